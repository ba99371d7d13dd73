/*
 * cmd-supervise.c - `steppy __supervise`: the keeper of one Exec command.
 *
 * Not for people: the runtime starts it (steps/exec.c) as
 *     steppy __supervise GRACE_MS PARENT_PID LEASE_FD -- COMMAND [ARGS...]
 * in a new session. It runs the command in a process group of its own (in
 * that session), asks the kernel for SIGTERM when the engine dies
 * (PR_SET_PDEATHSIG), and exits as the command did (status or signal). On
 * SIGTERM - a cancel, or the engine gone - it sends SIGTERM to the command's
 * group, waits up to GRACE_MS, then sends SIGKILL. When the command ends,
 * whatever it left running in its group is stopped the same way.
 *
 * The lease deadline: LEASE_FD (3, or - for none) is the runtime's memfd
 * holding the CLOCK_BOOTTIME time (int64_t ms) until which the engine can
 * prove its leases (runtime.h, RUNTIME_LEASE_FRESH_MS); the engine moves it
 * on at every lease renewal. Once that time has passed - the engine is
 * paused (SIGSTOP), stalled or cut off from the store, or dead - another
 * node may soon take the release over and run the attempt again, so the
 * group is killed at once (SIGKILL: no grace period can wait), and this
 * says why on the command's stderr. A grace period never runs past it
 * either. The mapping is read, never written, and the command does not
 * inherit it.
 */
#include "cli/cli.h"
#include "runtime/runner.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char supervise_help[] =
    "usage: steppy __supervise GRACE_MS PARENT_PID LEASE_FD -- COMMAND...\n"
    "\n"
    "Internal: runs an Exec step's command for the engine.\n";

static volatile sig_atomic_t term_requested;
/* The engine's lease deadline (see the top), or NULL: none. */
static const int64_t *lease_until;
/* The command, and its wait status once reaped (also by group_gone(),
 * which reaps whatever ends: its status must not be lost there). */
static pid_t command_pid;
static bool command_reaped;
static int command_status;

/* Reaps every child that has ended, keeping the command's status. */
static void reap_children(void)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0)
		if (p == command_pid && !command_reaped) {
			command_reaped = true;
			command_status = st;
		}
}

/* Waits for the command's end (after its group was stopped); its status. */
static int command_wait(void)
{
	int st;
	while (!command_reaped) {
		pid_t p = waitpid(command_pid, &st, 0);
		if (p == command_pid) {
			command_reaped = true;
			command_status = st;
		} else if (p < 0 && errno != EINTR) {
			break;
		}
	}
	return command_reaped ? command_status : 0;
}

static void on_term(int sig)
{
	(void)sig;
	term_requested = 1;
}

static void on_child(int sig)
{
	(void)sig; /* only wakes sigsuspend */
}

static long long boottime_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The lease deadline now (it moves on while the engine renews), or
 * LLONG_MAX without one. */
static long long lease_deadline(void)
{
	return lease_until ? (long long)__atomic_load_n(lease_until, __ATOMIC_ACQUIRE) : LLONG_MAX;
}

/* Maps LEASE_FD read-only and closes it (the command must not inherit it);
 * "-" is none. False if it is neither. */
static bool lease_open(const char *arg)
{
	if (!strcmp(arg, "-"))
		return true;
	char *end;
	long fd = strtol(arg, &end, 10);
	if (*end || fd < 0 || fd > 1024)
		return false;
	void *m = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, (int)fd, 0);
	close((int)fd);
	if (m == MAP_FAILED)
		return false;
	lease_until = m;
	return true;
}

/* True while group pgid holds a process that is not a zombie. A zombie
 * whose parent left the group (setsid) and never reaps it keeps the group
 * alive for kill() but runs nothing: it is not waited for. */
static bool group_lives(pid_t pgid)
{
	if (kill(-pgid, 0) < 0 && errno == ESRCH)
		return false;
	DIR *d = opendir("/proc");
	if (!d)
		return true; /* cannot tell: kill() says it is there */
	bool live = false;
	struct dirent *de;
	while (!live && (de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		char path[300], buf[1024];
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* pid (comm) state ppid pgrp ...: comm may hold spaces and ')' */
		char *p = strrchr(buf, ')');
		char state;
		long ppid, pgrp;
		if (p && sscanf(p + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3 && pgrp == pgid &&
		    state != 'Z' && state != 'X')
			live = true;
	}
	closedir(d);
	return live;
}

/* Waits until no process is left in group pgid, or deadline, or the lease
 * deadline; true if none is (zombies aside). */
static bool group_gone(pid_t pgid, long long deadline)
{
	for (;;) {
		reap_children();
		if (!group_lives(pgid))
			return true;
		long long now = boottime_ms();
		if (now >= deadline || now >= lease_deadline())
			return false;
		struct timespec nap = { 0, 20 * 1000 * 1000 };
		nanosleep(&nap, NULL);
	}
}

/* Kills group pgid and waits until every process of it is gone or a
 * zombie nobody here can reap (SIGKILL cannot be refused; a process in
 * uninterruptible sleep delays it). Sent again at every look, for one that
 * was being forked meanwhile; after KILL_GROUP_MS it gives up waiting (a
 * process stuck in the kernel), the SIGKILL being sent already. */
#define KILL_GROUP_MS 30000
static void kill_group(pid_t pgid)
{
	long long until = boottime_ms() + KILL_GROUP_MS;
	while (kill(-pgid, SIGKILL) == 0 && boottime_ms() < until) {
		struct timespec nap = { 0, 5 * 1000 * 1000 };
		nanosleep(&nap, NULL);
		reap_children();
		if (!group_lives(pgid))
			break;
	}
}

/* Stops group pgid: SIGTERM, then SIGKILL once grace_ms have passed or the
 * lease deadline has, whichever comes first. */
static void stop_group(pid_t pgid, long grace_ms)
{
	if (kill(-pgid, SIGTERM) < 0)
		return;
	if (!group_gone(pgid, boottime_ms() + grace_ms))
		kill_group(pgid);
}

/* The lease deadline passed while the command ran: kill it, say why. */
static void fence_group(pid_t pgid)
{
	kill_group(pgid);
	fprintf(stderr,
	        LEASE_KILLED_LINE " for %d s (paused, stalled or cut off from the store), and "
	                          "another may take the release over\n",
	        RUNTIME_LEASE_FRESH_MS / 1000);
}

static int exit_like(int status)
{
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		signal(sig, SIG_DFL);
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		kill(getpid(), sig);
		return 128 + sig;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int cmd_supervise(int argc, char **argv, const struct cli_ctx *ctx)
{
	(void)ctx; /* CLI_RAW */
	if (argc < 6 || strcmp(argv[4], "--") != 0 || !lease_open(argv[3]))
		return usage_error("__supervise is internal to steppy");
	long grace_ms = atol(argv[1]);
	pid_t parent = (pid_t)atol(argv[2]);
	if (boottime_ms() >= lease_deadline()) {
		fprintf(stderr,
		        "steppy: the command was not started: the steppy process running this "
		        "release has not renewed its lease for %d s\n",
		        RUNTIME_LEASE_FRESH_MS / 1000);
		return 125;
	}

	/* Signals stay blocked except inside sigsuspend(), so a cancel that
	 * arrives at any moment is seen (no window before a blocking wait). */
	sigset_t block, waitmask;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	struct sigaction sa = { .sa_handler = on_term };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	struct sigaction sc = { .sa_handler = on_child };
	sigemptyset(&sc.sa_mask);
	sigaction(SIGCHLD, &sc, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* Orphans of the command become our children, so we reap them: a zombie
	 * nobody reaps would keep the command's group alive to kill(2). */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (getppid() != parent) /* the engine died before we could ask */
		return 128 + SIGTERM;

	pid_t child = fork();
	if (child < 0) {
		perror("steppy: cannot start the command");
		return 127;
	}
	if (child == 0) {
		/* The command leads its own group inside our session, so the whole
		 * group can be stopped without stopping us. */
		setpgid(0, 0);
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigemptyset(&dfl.sa_mask);
		sigaction(SIGTERM, &dfl, NULL);
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGHUP, &dfl, NULL);
		sigaction(SIGCHLD, &dfl, NULL);
		sigprocmask(SIG_SETMASK, &waitmask, NULL);
		execvp(argv[5], argv + 5);
		fprintf(stderr, "steppy: cannot run %s: %s\n", argv[5], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	setpgid(child, child); /* also here: whichever runs first */
	command_pid = child;

	for (;;) {
		int st;
		pid_t r = waitpid(child, &st, WNOHANG);
		if (r == child) {
			command_reaped = true;
			command_status = st;
			break;
		}
		if (r < 0 && errno != EINTR)
			return 1;
		long long now = boottime_ms(), until = lease_deadline();
		if (now >= until) {
			fence_group(child);
			break;
		}
		if (term_requested) {
			stop_group(child, grace_ms);
			break;
		}
		/* Sleeps until a signal or the deadline (looked at again then:
		 * the engine may have moved it on meanwhile). */
		long long wait = until - now < 1000 ? until - now : 1000;
		struct timespec ts = { (time_t)(wait / 1000), (long)(wait % 1000) * 1000000 };
		ppoll(NULL, 0, &ts, &waitmask);
	}
	int status = command_wait();
	/* Whatever the command left behind goes with it: SIGTERM, then SIGKILL. */
	stop_group(child, grace_ms < 2000 ? grace_ms : 2000);
	return exit_like(status);
}
