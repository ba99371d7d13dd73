/*
 * cmd-supervise.c - `steppy __supervise`: the keeper of one Exec command.
 *
 * Not for people: the runtime starts it (run-exec.c) as
 *     steppy __supervise GRACE_MS PARENT_PID -- COMMAND [ARGS...]
 * in a new session, so it leads a process group that the command and all its
 * children join. It asks the kernel for SIGTERM when the engine dies
 * (PR_SET_PDEATHSIG), runs the command, and exits as the command did
 * (status or signal). On SIGTERM - a cancel, or the engine gone - it sends
 * SIGTERM to the whole group, waits up to GRACE_MS for the command to end,
 * then sends SIGKILL to the group (itself included).
 */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char supervise_help[] = "usage: steppy __supervise GRACE_MS PARENT_PID -- COMMAND...\n"
                              "\n"
                              "Internal: runs an Exec step's command for the engine.\n";

static volatile sig_atomic_t term_requested;

static void on_term(int sig)
{
	(void)sig;
	term_requested = 1;
}

/* Waits for child until deadline_ms (monotonic); returns 1 and *status if it ended. */
static int wait_until(pid_t child, int *status, long long deadline_ms)
{
	for (;;) {
		pid_t r = waitpid(child, status, WNOHANG);
		if (r == child)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 >= deadline_ms)
			return 0;
		struct timespec nap = { 0, 20 * 1000 * 1000 };
		nanosleep(&nap, NULL);
	}
}

static int exit_like(int status)
{
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		signal(sig, SIG_DFL);
		kill(getpid(), sig);
		return 128 + sig;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int cmd_supervise(int argc, char **argv)
{
	if (argc < 5 || strcmp(argv[3], "--") != 0)
		return usage_error("__supervise is internal to steppy");
	long grace_ms = atol(argv[1]);
	pid_t parent = (pid_t)atol(argv[2]);

	struct sigaction sa = { .sa_handler = on_term };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent) /* the engine died before we could ask */
		return 128 + SIGTERM;

	pid_t child = fork();
	if (child < 0) {
		perror("steppy: cannot start the command");
		return 127;
	}
	if (child == 0) {
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigemptyset(&dfl.sa_mask);
		sigaction(SIGTERM, &dfl, NULL);
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGHUP, &dfl, NULL);
		execvp(argv[4], argv + 4);
		fprintf(stderr, "steppy: cannot run %s: %s\n", argv[4], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}

	int status = 0;
	for (;;) {
		pid_t r = waitpid(child, &status, 0);
		if (r == child)
			break;
		if (r < 0 && errno == EINTR && term_requested) {
			/* Stop the group: the command and whatever it started. */
			signal(SIGTERM, SIG_IGN);
			kill(-getpgrp(), SIGTERM);
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			long long deadline =
			    (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + grace_ms;
			if (!wait_until(child, &status, deadline)) {
				kill(-getpgrp(), SIGKILL); /* ends us too */
				return 128 + SIGKILL;
			}
			break;
		}
		if (r < 0 && errno != EINTR)
			return 1;
	}
	/* Whatever the command left behind in the group goes with it. */
	signal(SIGTERM, SIG_IGN);
	kill(-getpgrp(), SIGTERM);
	signal(SIGTERM, SIG_DFL);
	return exit_like(status);
}
