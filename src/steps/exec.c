/*
 * exec.c - the Exec step type: run a local command (an argv list, no
 * shell); exit status 0 is success.
 *
 * Running it:
 * The command does not run as our child directly. We start `steppy
 * __supervise` (src/cli/cmd-supervise.c) in a new session; it runs the
 * command in a process group of that session, which holds everything the
 * command starts. The supervisor asks the kernel for SIGTERM when we die
 * (PR_SET_PDEATHSIG) and then stops the group, so a killed engine leaves no
 * command running unnoticed. Cancelling is SIGTERM to the supervisor, which
 * passes it on to the group and sends SIGKILL after the grace period.
 * The supervisor also gets the runtime's lease deadline (step_services
 * .lease_fd, as its fd 3) and SIGKILLs the group once it has passed: a node
 * paused or cut off from the store stops its commands before another node
 * can take the release over and run the attempt again.
 *
 * The handle recorded in StepStarted (the supervisor's pid, which is also
 * its session id, its start time, which tells a reused pid apart, and the
 * boot id and PID namespace that give the pid its meaning) lets a later
 * process of the same machine kill whatever is left of the session after a
 * crash.
 *
 * stdout and stderr are captured into the history, the last 64 KiB of each,
 * with the secret values the runtime knows masked.
 *
 * The environment: under a server (minimal_env) only PATH (a fixed safe
 * default), HOME, LANG, LC_ALL, TZ, USER, LOGNAME and TMPDIR from steppy's
 * own, never its credentials or webhook secrets; under `steppy run` the
 * user's environment without STEPPY_* variables. Then the step's env, then
 * the STEPPY_* variables that describe the attempt.
 */
#include "runtime/runner.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/strmap.h"
#include "util/utf8.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check_command(struct vctx *v, const struct doc_node *value)
{
	for (size_t i = 0; i < value->u.array.len; i++) {
		const struct doc_node *arg = value->u.array.items[i];
		size_t saved = v_push_index(v, i);
		if (arg->kind != DOC_STRING) {
			struct strbuf found = STRBUF_INIT;
			describe_found(&found, arg);
			v_error(v, arg->pos, NULL,
			        "command arguments must be strings, found %s (quote it)",
			        found.buf);
			strbuf_release(&found);
		} else if (memchr(arg->u.string.s, '\0', arg->u.string.len)) {
			v_error(v, arg->pos, NULL,
			        "command arguments may not contain NUL characters");
		} else if (i == 0 && arg->u.string.len == 0) {
			v_error(v, arg->pos, NULL, "the program to run (the first item) is empty");
		}
		v_pop(v, saved);
	}
}

static void check_env(struct vctx *v, const struct doc_node *value)
{
	struct strmap seen = STRMAP_INIT;
	for (size_t i = 0; i < value->u.object.len; i++) {
		const struct doc_member *m = &value->u.object.members[i];
		size_t saved = v_push(v, m->key);
		if (!str_is_ident(m->key)) {
			v_error(v, m->key_pos, NULL,
			        "\"%s\" is not a valid environment variable name (letters, digits "
			        "and _, not starting with a digit)",
			        m->key);
		} else if (v_first_seen(&seen, m->key, m)) {
			v_error(v, m->key_pos, NULL, "\"%s\" is given twice", m->key);
		} else if (m->value->kind != DOC_STRING) {
			struct strbuf found = STRBUF_INIT;
			describe_found(&found, m->value);
			v_error(v, m->value->pos, NULL,
			        "environment values must be strings, found %s (quote it)",
			        found.buf);
			strbuf_release(&found);
		} else if (memchr(m->value->u.string.s, '\0', m->value->u.string.len)) {
			v_error(v, m->value->pos, NULL,
			        "environment values may not contain NUL characters");
		}
		v_pop(v, saved);
	}
	strmap_release(&seen);
}

static const struct field_spec exec_fields[] = {
	{ .name = "command",
	  .types = T_ARRAY,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .check = check_command },
	{ .name = "env", .types = T_OBJECT, .check = check_env },
	{ .name = "cwd", .types = T_STRING, .flags = F_NONEMPTY },
	{ .name = NULL },
};

/* Appends arg quoted as a shell word if it needs quoting: '...', or $'...'
 * when it holds control characters, so the command stays on one line. */
static void shell_quote(struct strbuf *out, const char *arg)
{
	if (*arg && str_all_in(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	                            "-_./=:,+@%")) {
		strbuf_addstr(out, arg);
		return;
	}
	bool control = false;
	for (const char *p = arg; *p && !control; p++)
		control = (unsigned char)*p < 0x20 || *p == 0x7F;
	if (control) {
		strbuf_addstr(out, "$'");
		for (const char *p = arg; *p; p++) {
			unsigned char c = (unsigned char)*p;
			if (c == '\n')
				strbuf_addstr(out, "\\n");
			else if (c == '\t')
				strbuf_addstr(out, "\\t");
			else if (c == '\r')
				strbuf_addstr(out, "\\r");
			else if (c < 0x20 || c == 0x7F)
				strbuf_addf(out, "\\x%02x", c);
			else if (c == '\'' || c == '\\')
				strbuf_addf(out, "\\%c", c);
			else
				strbuf_addch(out, (char)c);
		}
		strbuf_addch(out, '\'');
		return;
	}
	strbuf_addch(out, '\'');
	for (const char *p = arg; *p; p++) {
		if (*p == '\'')
			strbuf_addstr(out, "'\\''");
		else
			strbuf_addch(out, *p);
	}
	strbuf_addch(out, '\'');
}

static void describe_exec(const struct doc_node *step, struct strbuf *out)
{
	const struct doc_node *cmd = doc_get(step, "command");
	struct strbuf line = STRBUF_INIT;
	for (size_t i = 0; i < cmd->u.array.len; i++) {
		if (i)
			strbuf_addch(&line, ' ');
		shell_quote(&line, cmd->u.array.items[i]->u.string.s);
	}
	describe_line(out, "runs", "%s", line.buf);
	strbuf_release(&line);
	const char *cwd = step_string(step, "cwd");
	if (cwd)
		describe_line(out, "in", "%s", cwd);
	const struct doc_node *env = doc_get(step, "env");
	for (size_t i = 0; env && i < env->u.object.len; i++)
		describe_line(out, i ? "" : "environment", "%s=%s", env->u.object.members[i].key,
		              env->u.object.members[i].value->u.string.s);
}

/* ---- configuration ------------------------------------------------------ */

/* An Exec step, read once when the plan is built. */
struct exec_config {
	size_t argc;
	const char **argv; /* owned array of argc (NULL-terminated); strings borrowed */
	size_t nenv;
	char **env;      /* owned: the step's env as "NAME=value" entries */
	const char *cwd; /* borrowed, or NULL: the directory steppy was started in */
};

static void *bind_exec(const struct doc_node *step)
{
	struct exec_config *c = xcalloc(1, sizeof(*c));
	const struct doc_node *cmd = doc_get(step, "command");
	const struct doc_node *env = doc_get(step, "env");
	c->argc = cmd->u.array.len;
	c->argv = xcalloc(c->argc + 1, sizeof(*c->argv));
	for (size_t i = 0; i < c->argc; i++)
		c->argv[i] = cmd->u.array.items[i]->u.string.s;
	c->nenv = env ? env->u.object.len : 0;
	c->env = xcalloc(c->nenv + 1, sizeof(*c->env));
	for (size_t i = 0; i < c->nenv; i++)
		c->env[i] = xstrfmt("%s=%s", env->u.object.members[i].key,
		                    env->u.object.members[i].value->u.string.s);
	c->cwd = step_string(step, "cwd");
	return c;
}

static void free_exec(void *config)
{
	struct exec_config *c = config;
	if (!c)
		return;
	for (size_t i = 0; i < c->nenv; i++)
		free(c->env[i]);
	free(c->env);
	free(c->argv);
	free(c);
}

/* The program a step runs: its command's first word (exec.allow names it). */
static const char *exec_program(const void *config)
{
	const struct exec_config *c = config;
	return c->argc ? c->argv[0] : NULL;
}

/* ---- the runner ------------------------------------------------------------ */

#define OUTPUT_KEEP ((size_t)64 * 1024)
/* How long to wait for output after the command exits (the supervisor stops
 * leftovers within 2 s). */
#define DRAIN_MS 3000

extern char **environ;

struct capture {
	uv_pipe_t pipe;
	struct strbuf tail; /* the last OUTPUT_KEEP bytes at most */
	size_t total;
};

struct exec_run {
	struct attempt *a;
	char **secrets; /* values to mask in the output; NULL-terminated, owned */
	uv_process_t proc;
	uv_timer_t drain; /* after exit: stop waiting for pipes a leftover holds */
	struct capture out, err;
	int64_t exit_status;
	int term_signal;
	bool exited;
	int open_handles;
};

static void free_strings(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* What a minimal environment keeps of steppy's own (none of them secret). */
static const char *const kept_vars[] = { "HOME", "LANG",    "LC_ALL", "LC_CTYPE", "TZ",
	                                 "USER", "LOGNAME", "TMPDIR", NULL };
/* PATH under a server: fixed, never the server's own. */
#define SAFE_PATH "/usr/local/bin:/usr/bin:/bin"

static bool kept(const char *entry)
{
	for (size_t i = 0; kept_vars[i]; i++) {
		size_t n = strlen(kept_vars[i]);
		if (!strncmp(entry, kept_vars[i], n) && entry[n] == '=')
			return true;
	}
	return false;
}

/* True if the step's env sets the variable of entry ("NAME=value"): the
 * step's value replaces steppy's. */
static bool set_by_step(const struct exec_config *c, const char *entry)
{
	size_t n = strcspn(entry, "=");
	for (size_t i = 0; i < c->nenv; i++)
		if (!strncmp(c->env[i], entry, n) && c->env[i][n] == '=')
			return true;
	return false;
}

static void keep_tail(struct capture *c, const char *data, size_t n)
{
	c->total += n;
	if (n >= OUTPUT_KEEP) {
		strbuf_reset(&c->tail);
		strbuf_add(&c->tail, data + n - OUTPUT_KEEP, OUTPUT_KEEP);
		return;
	}
	if (c->tail.len + n > 2 * OUTPUT_KEEP) {
		size_t drop = c->tail.len + n - OUTPUT_KEEP;
		memmove(c->tail.buf, c->tail.buf + drop, c->tail.len - drop);
		strbuf_truncate(&c->tail, c->tail.len - drop);
	}
	strbuf_add(&c->tail, data, n);
}

static json_t *capture_json(struct capture *c, char *const *secrets)
{
	size_t start = c->tail.len > OUTPUT_KEEP ? c->tail.len - OUTPUT_KEEP : 0;
	char *text = xmemdup0(c->tail.buf + start, c->tail.len - start);
	for (size_t i = 0; i < c->tail.len - start; i++)
		if (text[i] == '\0')
			text[i] = '?';
	utf8_sanitize(text);
	text = runner_mask(text, secrets);
	json_t *j = json_string(text);
	free(text);
	return j ? j : json_string("");
}

static void finish_if_done(struct exec_run *r)
{
	if (r->open_handles > 0)
		return;
	bool ok = r->exited && r->exit_status == 0 && r->term_signal == 0;
	json_t *details =
	    json_pack("{so so sI sI}", "stdout", capture_json(&r->out, r->secrets), "stderr",
	              capture_json(&r->err, r->secrets), "stdoutBytes", (json_int_t)r->out.total,
	              "stderrBytes", (json_int_t)r->err.total);
	if (r->term_signal == SIGKILL && memmem(r->err.tail.buf, r->err.tail.len, LEASE_KILLED_LINE,
	                                        strlen(LEASE_KILLED_LINE))) {
		/* its supervisor killed it: the lease deadline passed */
		json_object_set_new(details, "signal", json_string(strsignal(r->term_signal)));
		json_object_set_new(details, "error",
		                    json_string("stopped: this steppy process could not prove its "
		                                "lease in time (it was paused, stalled or cut off "
		                                "from the store), so the command was killed before "
		                                "another process could take the release over"));
	} else if (r->term_signal) {
		json_object_set_new(details, "signal", json_string(strsignal(r->term_signal)));
		json_object_set_new(
		    details, "error",
		    json_sprintf("the command was killed by %s", strsignal(r->term_signal)));
	} else {
		json_object_set_new(details, "exitCode", json_integer(r->exit_status));
		if (!ok)
			json_object_set_new(details, "error",
			                    json_sprintf("the command exited with status %lld",
			                                 (long long)r->exit_status));
	}
	strbuf_release(&r->out.tail);
	strbuf_release(&r->err.tail);
	free_strings(r->secrets);
	struct attempt *a = r->a;
	free(r);
	attempt_ended(a, ok, details);
}

static void handle_closed(uv_handle_t *h)
{
	struct exec_run *r = h->data;
	r->open_handles--;
	finish_if_done(r);
}

static void spawn_failed_closed(uv_handle_t *h)
{
	struct exec_run *r = h->data;
	if (--r->open_handles == 0) {
		strbuf_release(&r->out.tail);
		strbuf_release(&r->err.tail);
		free_strings(r->secrets);
		free(r);
	}
}

static void close_pipe(struct capture *c);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	static char chunk[65536];
	(void)suggested;
	*buf = uv_buf_init(chunk, sizeof(chunk));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct exec_run *r = s->data;
	struct capture *c = (uv_pipe_t *)s == &r->out.pipe ? &r->out : &r->err;
	if (n > 0) {
		keep_tail(c, buf->base, (size_t)n);
	} else if (n < 0) {
		close_pipe(c);
		if (r->exited && uv_is_closing((uv_handle_t *)&r->out.pipe) &&
		    uv_is_closing((uv_handle_t *)&r->err.pipe) &&
		    !uv_is_closing((uv_handle_t *)&r->drain))
			uv_close((uv_handle_t *)&r->drain, handle_closed);
	}
}

static void close_pipe(struct capture *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->pipe)) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		uv_close((uv_handle_t *)&c->pipe, handle_closed);
	}
}

/* The command has exited but its output pipes are still open: something it
 * left (that escaped its process group) holds them. Stop waiting. */
static void drain_cb(uv_timer_t *t)
{
	struct exec_run *r = t->data;
	close_pipe(&r->out);
	close_pipe(&r->err);
	uv_close((uv_handle_t *)t, handle_closed);
}

static void kill_session(int sid);

static void exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
	struct exec_run *r = p->data;
	/* A supervisor that ended by a signal may have been killed before it
	 * could stop its command (SIGKILL, the OOM killer): whatever is left of
	 * its session goes now, before the attempt's end is recorded and a
	 * retry can run beside it. A session id is not reused while a member
	 * lives, so every process found in it is this command's. */
	if (term_signal)
		kill_session(p->pid);
	r->exited = true;
	r->exit_status = status;
	r->term_signal = term_signal;
	uv_close((uv_handle_t *)p, handle_closed);
	if (uv_is_closing((uv_handle_t *)&r->out.pipe) &&
	    uv_is_closing((uv_handle_t *)&r->err.pipe))
		uv_close((uv_handle_t *)&r->drain, handle_closed);
	else
		uv_timer_start(&r->drain, drain_cb, DRAIN_MS, 0);
}

/* Start time of a process in clock ticks since boot (/proc/PID/stat field 22), or 0. */
static long long process_start_time(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p)
		return 0;
	long long start = 0;
	/* after ") " come fields 3..: state(3) ... starttime(22) */
	int field = 2;
	for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " "))
		if (++field == 22) {
			start = atoll(tok);
			break;
		}
	return start;
}

/* This boot of this machine (another machine, or a reboot, has another). */
static const char *boot_id(char *buf, size_t size)
{
	buf[0] = '\0';
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (f) {
		if (!fgets(buf, (int)size, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* The PID namespace this process sees pids in ("pid:[4026531836]"), or "". */
static const char *pid_namespace(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/ns/pid", buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static const char *self_exe(void)
{
	static char path[PATH_MAX];
	if (!path[0]) {
		ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
		if (n <= 0)
			return "steppy";
		path[n] = '\0';
	}
	return path;
}

/* steppy __supervise GRACE_MS PARENT_PID LEASE_FD -- command... (LEASE_FD:
 * 3, where the runtime's lease deadline is handed over, or - for none).
 * NULL-terminated; the caller frees each string and the array. */
static char **supervisor_argv(const struct exec_config *c, const struct step_services *svc)
{
	char **argv = xcalloc(6 + c->argc + 1, sizeof(*argv));
	argv[0] = xstrdup(self_exe());
	argv[1] = xstrdup("__supervise");
	argv[2] = xstrfmt("%lld", (long long)svc->cancel_grace_ms);
	argv[3] = xstrfmt("%d", (int)getpid());
	argv[4] = xstrdup(svc->lease_fd >= 0 ? "3" : "-");
	argv[5] = xstrdup("--");
	for (size_t i = 0; i < c->argc; i++)
		argv[6 + i] = xstrdup(c->argv[i]);
	return argv;
}

static int exec_start(struct attempt *a, const struct attempt_info *info, const void *config,
                      void **ret_state, struct strbuf *err)
{
	const struct exec_config *c = config;
	const char *cwd = c->cwd;
	bool minimal_env = info->svc->minimal_env;

	bool lease = info->svc->lease_fd >= 0;
	char **argv = supervisor_argv(c, info->svc);

	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	size_t extra = 7 + c->nenv;
	char **envp = xcalloc(nenv + extra + 1, sizeof(*envp));
	size_t k = 0;
	if (minimal_env && !set_by_step(c, "PATH="))
		envp[k++] = xstrdup("PATH=" SAFE_PATH);
	for (size_t i = 0; i < nenv; i++)
		if ((minimal_env ? kept(environ[i]) : strncmp(environ[i], "STEPPY_", 7) != 0) &&
		    !set_by_step(c, environ[i]))
			envp[k++] = xstrdup(environ[i]);
	for (size_t i = 0; i < c->nenv; i++)
		envp[k++] = xstrdup(c->env[i]);
	envp[k++] = xstrfmt("STEPPY_EXECUTION_ID=%s", info->execution_id);
	envp[k++] = xstrfmt("STEPPY_STAGE=%s", info->stage_name);
	envp[k++] = xstrfmt("STEPPY_STEP=%s", info->step_plan->name);
	envp[k++] = xstrfmt("STEPPY_STEP_ID=%d.%d", info->stage, info->step);
	envp[k++] = xstrfmt("STEPPY_ATTEMPT=%d", info->attempt);
	envp[k++] = xstrfmt("STEPPY_IDEMPOTENCY_KEY=%s", info->idempotency_key);

	char *dir = !cwd            ? xstrdup(info->workdir)
	            : cwd[0] == '/' ? xstrdup(cwd)
	                            : xstrfmt("%s/%s", info->workdir, cwd);

	struct exec_run *r = xcalloc(1, sizeof(*r));
	r->a = a;
	size_t nsecrets = 0;
	while (info->secret_values && info->secret_values[nsecrets])
		nsecrets++;
	r->secrets = xcalloc(nsecrets + 1, sizeof(*r->secrets));
	for (size_t i = 0; i < nsecrets; i++)
		r->secrets[i] = xstrdup(info->secret_values[i]);
	strbuf_init(&r->out.tail, SIZE_MAX);
	strbuf_init(&r->err.tail, SIZE_MAX);
	uv_pipe_init(info->svc->loop, &r->out.pipe, 0);
	uv_pipe_init(info->svc->loop, &r->err.pipe, 0);
	uv_timer_init(info->svc->loop, &r->drain);
	r->drain.data = r;
	r->out.pipe.data = r->err.pipe.data = r->proc.data = r;
	uv_stdio_container_t stdio[4] = {
		{ .flags = UV_IGNORE },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		  .data.stream = (uv_stream_t *)&r->out.pipe },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		  .data.stream = (uv_stream_t *)&r->err.pipe },
		{ .flags = UV_INHERIT_FD, .data.fd = info->svc->lease_fd },
	};
	uv_process_options_t opts = {
		.exit_cb = exit_cb,
		.file = argv[0],
		.args = argv,
		.env = envp,
		.cwd = dir,
		.flags = UV_PROCESS_DETACHED, /* setsid: the supervisor leads a new group */
		.stdio_count = lease ? 4 : 3,
		.stdio = stdio,
	};
	int rc = uv_spawn(info->svc->loop, &r->proc, &opts);
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
	for (size_t i = 0; envp[i]; i++)
		free(envp[i]);
	free(envp);
	free(dir);
	if (rc < 0) {
		strbuf_addf(err, "cannot start the command: %s", uv_strerror(rc));
		/* The handles must be closed before r is freed (spawn_failed_closed). */
		r->open_handles = 4;
		uv_close((uv_handle_t *)&r->drain, spawn_failed_closed);
		uv_close((uv_handle_t *)&r->out.pipe, spawn_failed_closed);
		uv_close((uv_handle_t *)&r->err.pipe, spawn_failed_closed);
		uv_close((uv_handle_t *)&r->proc, spawn_failed_closed);
		return SP_EIO;
	}
	r->open_handles = 4; /* process, two pipes, drain timer */
	uv_read_start((uv_stream_t *)&r->out.pipe, alloc_cb, read_cb);
	uv_read_start((uv_stream_t *)&r->err.pipe, alloc_cb, read_cb);
	*ret_state = r;
	char boot[64], pidns[64];
	attempt_started(a, json_pack("{si sI ss ss}", "pid", r->proc.pid, "startTime",
	                             (json_int_t)process_start_time(r->proc.pid), "bootId",
	                             boot_id(boot, sizeof(boot)), "pidNamespace",
	                             pid_namespace(pidns, sizeof(pidns))));
	return 0;
}

/* SIGTERM to the supervisor (it stops the group with the grace period);
 * for an attempt whose release another process holds now, SIGKILL to the
 * whole session at once. */
static void exec_cancel(struct attempt *a, void *state)
{
	struct exec_run *r = state;
	if (r && !r->exited && attempt_lost(a))
		kill_session(r->proc.pid);
	else if (r && !r->exited)
		uv_process_kill(&r->proc, SIGTERM);
}

/* Session id of a process (/proc/PID/stat field 6), or -1. */
static long process_session(const char *pid)
{
	char path[300], buf[1024];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	long sid = -1;
	int field = 2;
	for (char *tok = p ? strtok(p + 1, " ") : NULL; tok; tok = strtok(NULL, " "))
		if (++field == 6) {
			sid = atol(tok);
			break;
		}
	return sid;
}

/* SIGKILLs every process of session sid (a supervisor's pid). */
static void kill_session(int sid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] >= '1' && e->d_name[0] <= '9' && process_session(e->d_name) == sid)
			kill((pid_t)atol(e->d_name), SIGKILL);
	if (d)
		closedir(d);
}

static void exec_reap(const json_t *handle)
{
	int pid = (int)json_integer_value(json_object_get(handle, "pid"));
	long long start = (long long)json_integer_value(json_object_get(handle, "startTime"));
	if (pid <= 1)
		return;
	/* A pid means something only on the machine (and in the PID namespace)
	 * that recorded it: another node's command is not ours to find. Its
	 * supervisor killed it when that node's leases lapsed, before this
	 * process could take the release over (cmd-supervise.c). */
	char boot[64], pidns[64];
	const char *was_boot = json_string_value(json_object_get(handle, "bootId"));
	const char *was_ns = json_string_value(json_object_get(handle, "pidNamespace"));
	if ((was_boot && strcmp(was_boot, boot_id(boot, sizeof(boot)))) ||
	    (was_ns && strcmp(was_ns, pid_namespace(pidns, sizeof(pidns)))))
		return;
	/* The supervisor led a session holding the command and all it started.
	 * A session id is not reused while any member lives, so every process
	 * still in it is ours - unless the pid now belongs to a new process
	 * (another start time), which leads a session of its own. */
	long long now_start = process_start_time(pid);
	if (now_start && start && now_start != start)
		return;
	kill_session(pid);
}

/* What a running command waits for ("its work to stop" while it is stopped). */
static void exec_waiting_for(const struct doc_node *step, const struct step_view *view,
                             struct strbuf *out)
{
	(void)step;
	if (!view->cancelling)
		strbuf_addstr(out, "its command to end");
}

const struct step_type step_exec = {
	.name = "Exec",
	.summary = "run a local command; exit status 0 is success",
	.flags = STEP_RETRYABLE | STEP_LOCAL_CODE,
	.fields = exec_fields,
	.describe = describe_exec,
	.bind = bind_exec,
	.free_config = free_exec,
	.start = exec_start,
	.cancel = exec_cancel,
	.reap = exec_reap,
	.program = exec_program,
	.waiting_for = exec_waiting_for,
};
