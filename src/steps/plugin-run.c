/*
 * plugin-run.c - running plugin calls and the runner of plugin step types
 * (plugin.h; the protocol is docs/plugins.md).
 *
 * A call is one process: `PLUGIN VERB` with the JSON request on stdin (a
 * memory file, so a plugin that never reads it cannot block us or raise
 * SIGPIPE), stdout captured up to a cap, the start of stderr kept for the
 * failure message, a time limit (SIGKILL), all on the runtime's libuv loop:
 * nothing blocks. A call is over when the process has exited and its pipes
 * are closed, or DRAIN_MS after it exited (a background job it started may
 * still hold them).
 *
 * The runner: start (or, reattaching with a recorded handle, status), then
 * status every pollSeconds the plugin suggests (1 s to 5 min) until done or
 * failed. The handle is recorded in StepStarted as {"plugin", "handle"}.
 * A later process (after SIGKILL, a stop, a takeover) calls status with it
 * and never start; if the process died before the handle was recorded, it
 * sends start again with the same idempotency key, and the plugin must
 * answer with the work it started for that key (docs/plugins.md).
 * Cancelling (abort, the step's timeout) sends cancel with the handle once
 * there is one; the attempt then ends as cancelled, whatever the plugin
 * answers, so a plugin that ignores cancel stalls nothing.
 * Outputs and messages have the plan's and the process's secrets masked.
 */
#include "steps/plugin.h"

#include "runtime/runner.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/utf8.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define DRAIN_MS          1000
#define STATUS_ERRORS_MAX 3 /* failed status calls in a row tolerated */
#define NOTICES_MAX       100

extern char **environ;

/* ---- one call ---- */

struct plugin_call {
	uv_process_t proc;
	uv_pipe_t out, err;
	uv_timer_t timer; /* the time limit, then the drain after exit */
	struct strbuf obuf, ebuf;
	size_t out_cap;
	int open; /* handles not yet closed */
	bool exited, out_eof, err_eof, timed_out, too_big, reported;
	int64_t exit_status;
	int term_signal;
	plugin_call_cb cb; /* NULL once abandoned */
	void *arg;
};

static void call_closed(uv_handle_t *h)
{
	struct plugin_call *c = h->data;
	if (--c->open == 0) {
		strbuf_release(&c->obuf);
		strbuf_release(&c->ebuf);
		free(c);
	}
}

static void call_close(struct plugin_call *c)
{
	uv_close((uv_handle_t *)&c->proc, call_closed);
	uv_close((uv_handle_t *)&c->out, call_closed);
	uv_close((uv_handle_t *)&c->err, call_closed);
	uv_close((uv_handle_t *)&c->timer, call_closed);
}

static void call_kill(struct plugin_call *c)
{
	if (!c->exited)
		uv_process_kill(&c->proc, SIGKILL);
}

static void call_finish(struct plugin_call *c)
{
	if (c->reported)
		return;
	c->reported = true;
	uv_timer_stop(&c->timer);
	if (c->cb) {
		struct plugin_call_result res = {
			.timed_out = c->timed_out,
			.too_big = c->too_big,
			.exit_status = c->exit_status,
			.term_signal = c->term_signal,
			.out = c->obuf.buf,
			.out_len = c->obuf.len,
			.err = c->ebuf.buf,
			.err_len = c->ebuf.len,
		};
		c->cb(c->arg, &res);
	}
	call_close(c);
}

static void drain_over(uv_timer_t *t)
{
	call_finish(t->data);
}

static void deadline(uv_timer_t *t)
{
	struct plugin_call *c = t->data;
	c->timed_out = true;
	call_kill(c);
}

static void maybe_done(struct plugin_call *c)
{
	if (!c->exited || c->reported)
		return;
	if (c->out_eof && c->err_eof)
		call_finish(c);
}

static void call_exit(uv_process_t *p, int64_t status, int sig)
{
	struct plugin_call *c = p->data;
	c->exited = true;
	c->exit_status = status;
	c->term_signal = sig;
	uv_timer_stop(&c->timer);
	if (c->out_eof && c->err_eof)
		call_finish(c);
	else
		uv_timer_start(&c->timer, drain_over, DRAIN_MS, 0);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	static char chunk[65536]; /* one loop thread; read_cb copies it out */
	buf->base = chunk;
	buf->len = sizeof(chunk);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct plugin_call *c = s->data;
	bool is_out = s == (uv_stream_t *)&c->out;
	if (n < 0) {
		uv_read_stop(s);
		if (is_out)
			c->out_eof = true;
		else
			c->err_eof = true;
		maybe_done(c);
		return;
	}
	if (is_out) {
		if (c->too_big)
			return;
		if (c->obuf.len + (size_t)n > c->out_cap) {
			c->too_big = true;
			call_kill(c);
			return;
		}
		strbuf_add(&c->obuf, buf->base, (size_t)n);
	} else if (c->ebuf.len < PLUGIN_STDERR_KEEP) {
		size_t room = PLUGIN_STDERR_KEEP - c->ebuf.len;
		strbuf_add(&c->ebuf, buf->base, (size_t)n < room ? (size_t)n : room);
	}
}

int plugin_call_start(uv_loop_t *loop, const char *path, const char *verb, const char *request,
                      char *const *env, int64_t timeout_ms, size_t out_cap, plugin_call_cb cb,
                      void *arg, struct plugin_call **ret, struct strbuf *err)
{
	int in = memfd_create("steppy-plugin-request", MFD_CLOEXEC);
	size_t len = strlen(request);
	if (in < 0 || write(in, request, len) != (ssize_t)len || lseek(in, 0, SEEK_SET) < 0) {
		strbuf_addstr(err, "cannot hold its request in memory");
		if (in >= 0)
			close(in);
		return SP_EIO;
	}
	struct plugin_call *c = xcalloc(1, sizeof(*c));
	c->out_cap = out_cap;
	c->cb = cb;
	c->arg = arg;
	strbuf_init(&c->obuf, SIZE_MAX);
	strbuf_init(&c->ebuf, SIZE_MAX);
	uv_pipe_init(loop, &c->out, 0);
	uv_pipe_init(loop, &c->err, 0);
	uv_timer_init(loop, &c->timer);
	c->proc.data = c->out.data = c->err.data = c->timer.data = c;
	char *argv[] = { (char *)path, (char *)verb, NULL };
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_INHERIT_FD, .data.fd = in },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		  .data.stream = (uv_stream_t *)&c->out },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		  .data.stream = (uv_stream_t *)&c->err },
	};
	uv_process_options_t opts = {
		.exit_cb = call_exit,
		.file = path,
		.args = argv,
		.env = (char **)env,
		.flags = UV_PROCESS_DETACHED, /* its own session: no terminal signals */
		.stdio_count = 3,
		.stdio = stdio,
	};
	int rc = uv_spawn(loop, &c->proc, &opts);
	close(in);
	c->open = 4;
	if (rc < 0) {
		strbuf_addf(err, "cannot run it: %s", uv_strerror(rc));
		c->cb = NULL;
		c->reported = true;
		call_close(c);
		return SP_EIO;
	}
	uv_read_start((uv_stream_t *)&c->out, alloc_cb, read_cb);
	uv_read_start((uv_stream_t *)&c->err, alloc_cb, read_cb);
	uv_timer_start(&c->timer, deadline, (uint64_t)timeout_ms, 0);
	*ret = c;
	return 0;
}

void plugin_call_abandon(struct plugin_call *c)
{
	if (!c || c->reported)
		return;
	c->cb = NULL;
	call_kill(c);
	c->reported = true;
	uv_timer_stop(&c->timer);
	call_close(c);
}

/* Text from a plugin made safe for a message: NULs as ?, valid UTF-8,
 * trailing white space dropped. */
static void add_safe(struct strbuf *out, const char *text, size_t len)
{
	char *s = xmemdup0(text, len);
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0')
			s[i] = '?';
	utf8_sanitize(s);
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		s[--n] = '\0';
	strbuf_addstr(out, s);
	free(s);
}

bool plugin_call_failed(const struct plugin_call_result *res, int64_t timeout_ms, size_t out_cap,
                        struct strbuf *out)
{
	if (res->timed_out)
		strbuf_addf(out, "it did not answer within %lld s (killed)",
		            (long long)(timeout_ms / 1000));
	else if (res->too_big)
		strbuf_addf(out, "it printed more than %zu bytes (killed)", out_cap);
	else if (res->term_signal)
		strbuf_addf(out, "it was killed by signal %d", res->term_signal);
	else if (res->exit_status)
		strbuf_addf(out, "it exited with status %lld", (long long)res->exit_status);
	else if (!res->out_len)
		strbuf_addstr(out, "it printed no answer");
	else
		return false;
	if (res->err_len) {
		strbuf_addstr(out, ": ");
		add_safe(out, res->err, res->err_len);
	}
	return true;
}

/* ---- answers ---- */

void plugin_answer_release(struct plugin_answer *ans)
{
	json_decref(ans->handle);
	json_decref(ans->outputs);
	free(ans->message);
	memset(ans, 0, sizeof(*ans));
}

int plugin_answer_parse(const char *call, const char *text, size_t len, struct plugin_answer *ret,
                        struct strbuf *err)
{
	memset(ret, 0, sizeof(*ret));
	json_error_t jerr;
	json_t *d = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!d) {
		strbuf_addf(err, "its %s answer is not JSON (line %d, column %d: %s)", call,
		            jerr.line, jerr.column, jerr.text);
		return SP_EINVAL;
	}
	int rc = SP_EINVAL;
	json_t *proto = json_object_get(d, "protocol");
	if (!json_is_object(d)) {
		strbuf_addf(err, "its %s answer is not a JSON object", call);
		goto out;
	}
	if (!json_is_integer(proto) || json_integer_value(proto) != PLUGIN_PROTOCOL) {
		if (json_is_integer(proto))
			strbuf_addf(err,
			            "its %s answer speaks protocol %lld; this steppy speaks %d",
			            call, (long long)json_integer_value(proto), PLUGIN_PROTOCOL);
		else
			strbuf_addf(err, "its %s answer has no \"protocol\": %d", call,
			            PLUGIN_PROTOCOL);
		goto out;
	}
	const char *status = json_string_value(json_object_get(d, "status"));
	json_t *handle = json_object_get(d, "handle");
	if (!status && !strcmp(call, "start") && handle)
		status = "running";
	if (!status && !strcmp(call, "cancel"))
		status = "running";
	if (!status ||
	    (strcmp(status, "running") && strcmp(status, "done") && strcmp(status, "failed"))) {
		strbuf_addf(err, "its %s answer has no \"status\" of running, done or failed",
		            call);
		goto out;
	}
	ret->state = !strcmp(status, "done")     ? PLUGIN_DONE
	             : !strcmp(status, "failed") ? PLUGIN_FAILED
	                                         : PLUGIN_RUNNING;
	if (!strcmp(call, "start") && ret->state == PLUGIN_RUNNING) {
		if (!handle || json_is_null(handle)) {
			strbuf_addstr(err, "its start answer has no \"handle\"");
			goto out;
		}
		char *h = json_dumps(handle, JSON_COMPACT | JSON_ENCODE_ANY);
		size_t hlen = h ? strlen(h) : 0;
		free(h);
		if (hlen > PLUGIN_HANDLE_MAX) {
			strbuf_addf(err, "its handle is larger than %d bytes", PLUGIN_HANDLE_MAX);
			goto out;
		}
	}
	json_t *outputs = json_object_get(d, "outputs");
	if (outputs && !json_is_object(outputs)) {
		strbuf_addf(err, "its %s answer's \"outputs\" is not an object", call);
		goto out;
	}
	json_t *msg = json_object_get(d, "message");
	if (msg && !json_is_string(msg)) {
		strbuf_addf(err, "its %s answer's \"message\" is not a string", call);
		goto out;
	}
	json_t *poll = json_object_get(d, "pollSeconds");
	if (poll && !json_is_number(poll)) {
		strbuf_addf(err, "its %s answer's \"pollSeconds\" is not a number", call);
		goto out;
	}
	double ms = poll ? json_number_value(poll) * 1000 : PLUGIN_POLL_DEFAULT_MS;
	ret->poll_ms = ms < PLUGIN_POLL_MIN_MS   ? PLUGIN_POLL_MIN_MS
	               : ms > PLUGIN_POLL_MAX_MS ? PLUGIN_POLL_MAX_MS
	                                         : (int64_t)ms;
	ret->handle = handle ? json_incref(handle) : NULL;
	ret->outputs = outputs ? json_incref(outputs) : NULL;
	ret->message = msg ? xstrdup(json_string_value(msg)) : NULL;
	rc = 0;
out:
	json_decref(d);
	return rc;
}

/* ---- environment ---- */

static const char *const kept_vars[] = { "HOME", "LANG",    "LC_ALL", "LC_CTYPE", "TZ",
	                                 "USER", "LOGNAME", "TMPDIR", NULL };
#define SAFE_PATH "/usr/local/bin:/usr/bin:/bin"

char **plugin_env(const struct plugin_type *pt, bool minimal)
{
	size_t nkept = sizeof(kept_vars) / sizeof(kept_vars[0]);
	size_t nenv = 0;
	while (pt && pt->env[nenv])
		nenv++;
	char **env = xcalloc(nkept + nenv + 2, sizeof(*env));
	size_t k = 0;
	const char *path = getenv("PATH");
	env[k++] = xstrfmt("PATH=%s", minimal || !path ? SAFE_PATH : path);
	for (size_t i = 0; kept_vars[i]; i++) {
		const char *v = getenv(kept_vars[i]);
		if (v)
			env[k++] = xstrfmt("%s=%s", kept_vars[i], v);
	}
	for (size_t i = 0; i < nenv; i++) {
		const char *v = getenv(pt->env[i]);
		if (v && strcmp(pt->env[i], "PATH") != 0)
			env[k++] = xstrfmt("%s=%s", pt->env[i], v);
	}
	return env;
}

/* ---- the runner ---- */

enum step_phase { PH_START, PH_STATUS, PH_CANCEL, PH_IDLE };

struct prun {
	struct attempt *a;
	const struct plugin_config *c;
	uv_loop_t *loop;
	uv_timer_t timer;         /* the next status call */
	struct plugin_call *call; /* in flight, or NULL */
	enum step_phase phase;    /* of the call in flight, or PH_IDLE */
	json_t *handle;           /* owned: the plugin's handle once known */
	json_t *base;             /* owned: what every request carries */
	char **env;               /* owned */
	char **secrets;           /* owned, NULL-terminated */
	bool cancelling;
	int status_errors;
	int notices;
	char *last_message; /* owned: the last running message reported */
};

static void free_strings(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void prun_closed(uv_handle_t *h)
{
	struct prun *r = h->data;
	json_decref(r->handle);
	json_decref(r->base);
	free_strings(r->env);
	free_strings(r->secrets);
	free(r->last_message);
	free(r);
}

static void prun_free(struct prun *r)
{
	plugin_call_abandon(r->call);
	r->call = NULL;
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, prun_closed);
}

/* A copy of v with secrets masked in every string (keys included). */
static json_t *mask_json(const json_t *v, char *const *secrets, int depth)
{
	if (depth > 32)
		return json_string("(nested too deep)");
	if (json_is_string(v)) {
		char *s = runner_mask(xstrdup(json_string_value(v)), secrets);
		json_t *j = json_string(s);
		free(s);
		return j ? j : json_string("?");
	}
	if (json_is_object(v)) {
		json_t *o = json_object();
		const char *key;
		json_t *item;
		json_object_foreach((json_t *)v, key, item)
		{
			char *k = runner_mask(xstrdup(key), secrets);
			json_object_set_new(o, k, mask_json(item, secrets, depth + 1));
			free(k);
		}
		return o;
	}
	if (json_is_array(v)) {
		json_t *a = json_array();
		size_t i;
		json_t *item;
		json_array_foreach(v, i, item)
		{
			json_array_append_new(a, mask_json(item, secrets, depth + 1));
		}
		return a;
	}
	return json_deep_copy(v);
}

/* Ends the attempt; error (may be NULL) is masked here, outputs copied. */
static void finish(struct prun *r, bool ok, const json_t *outputs, const char *error)
{
	struct attempt *a = r->a;
	json_t *d = json_object();
	if (outputs)
		json_object_set_new(d, "outputs", mask_json(outputs, r->secrets, 0));
	if (error) {
		char *e = runner_mask(xstrfmt("%s", error), r->secrets);
		json_t *j = json_string(e);
		json_object_set_new(d, "error", j ? j : json_string("?"));
		free(e);
	}
	prun_free(r);
	attempt_ended(a, ok, d);
}

static void send_call(struct prun *r, enum step_phase phase);

static void poll_now(uv_timer_t *t)
{
	send_call(t->data, PH_STATUS);
}

static const char *phase_name(enum step_phase p)
{
	return p == PH_START ? "start" : p == PH_STATUS ? "status" : "cancel";
}

/* A failed call: a message "plugin T (PATH) CALL: WHY". */
static void fail_call(struct prun *r, enum step_phase phase, const char *why)
{
	struct strbuf msg = STRBUF_INIT;
	strbuf_addf(&msg, "plugin %s (%s) %s: %s", r->c->pt->name, r->c->pt->path,
	            phase_name(phase), why);
	if (phase == PH_CANCEL || r->cancelling)
		strbuf_addstr(&msg, " (the step is cancelled; its work may still run)");
	finish(r, false, NULL, msg.buf);
	strbuf_release(&msg);
}

/* A call failed (could not run, or answered nothing usable): a failed cancel
 * still ends the attempt as cancelled, any other call fails it. */
static void call_failed(struct prun *r, enum step_phase phase, const char *why)
{
	if (phase == PH_CANCEL) {
		struct strbuf msg = STRBUF_INIT;
		strbuf_addf(&msg, "cancelled; the plugin's cancel call failed: %s", why);
		finish(r, false, NULL, msg.buf);
		strbuf_release(&msg);
	} else {
		fail_call(r, phase, why);
	}
}

static void answered(void *arg, const struct plugin_call_result *res)
{
	struct prun *r = arg;
	enum step_phase phase = r->phase;
	r->call = NULL;
	r->phase = PH_IDLE;
	struct strbuf why = STRBUF_INIT;
	struct plugin_answer ans;
	bool failed =
	    plugin_call_failed(res, r->c->pt->call_ms, PLUGIN_ANSWER_MAX, &why) ||
	    plugin_answer_parse(phase_name(phase), res->out, res->out_len, &ans, &why) < 0;
	if (failed) {
		if (phase == PH_STATUS && !r->cancelling &&
		    ++r->status_errors < STATUS_ERRORS_MAX) {
			/* a status call may fail now and then; the work goes on */
			strbuf_release(&why);
			uv_timer_start(&r->timer, poll_now, PLUGIN_POLL_MIN_MS, 0);
			return;
		}
		if (phase == PH_STATUS && r->status_errors >= STATUS_ERRORS_MAX)
			strbuf_addf(&why, " (%d status calls in a row failed)", STATUS_ERRORS_MAX);
		call_failed(r, phase, why.buf);
		strbuf_release(&why);
		return;
	}
	strbuf_release(&why);
	r->status_errors = 0;
	if (phase == PH_CANCEL) {
		finish(r, false, ans.outputs, ans.message ? ans.message : "cancelled");
		plugin_answer_release(&ans);
		return;
	}
	if (phase == PH_START && ans.handle && !json_is_null(ans.handle)) {
		json_decref(r->handle);
		r->handle = json_incref(ans.handle);
		attempt_started(
		    r->a, json_pack("{sssO}", "plugin", r->c->pt->name, "handle", ans.handle));
	}
	if (ans.state == PLUGIN_RUNNING && r->handle && (r->c->pt->type.flags & STEP_NO_WAIT)) {
		/* the no-wait form ends once its work has started */
		json_t *out = json_pack("{sO}", "handle", r->handle);
		finish(r, true, out, NULL);
		json_decref(out);
		plugin_answer_release(&ans);
		return;
	}
	if (ans.state != PLUGIN_RUNNING) {
		struct strbuf msg = STRBUF_INIT;
		if (ans.state == PLUGIN_FAILED)
			strbuf_addf(&msg, "%s",
			            ans.message ? ans.message : "the plugin says failed");
		finish(r, ans.state == PLUGIN_DONE, ans.outputs,
		       ans.state == PLUGIN_FAILED ? msg.buf : NULL);
		strbuf_release(&msg);
		plugin_answer_release(&ans);
		return;
	}
	if (r->cancelling) {
		send_call(r, PH_CANCEL);
		plugin_answer_release(&ans);
		return;
	}
	/* Still running: a Notice when its message changes. */
	if (ans.message && r->notices < NOTICES_MAX &&
	    (!r->last_message || strcmp(r->last_message, ans.message))) {
		r->notices++;
		free(r->last_message);
		r->last_message = xstrdup(ans.message);
		char *m = runner_mask(xstrdup(ans.message), r->secrets);
		json_t *j = json_string(m);
		attempt_progress(r->a, json_pack("{so}", "message", j ? j : json_string("?")));
		free(m);
	}
	uv_timer_start(&r->timer, poll_now, (uint64_t)ans.poll_ms, 0);
	plugin_answer_release(&ans);
}

static void send_call(struct prun *r, enum step_phase phase)
{
	json_t *req = json_deep_copy(r->base);
	json_object_set_new(req, "call", json_string(phase_name(phase)));
	if (phase != PH_START && r->handle)
		json_object_set(req, "handle", r->handle);
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	struct strbuf why = STRBUF_INIT;
	/* A plugin removed or made unsafe since start-up is not run. */
	int rc = plugin_file_check(r->c->pt->path, &why);
	if (rc == 0)
		rc = plugin_call_start(r->loop, r->c->pt->path, phase_name(phase), text, r->env,
		                       r->c->pt->call_ms, PLUGIN_ANSWER_MAX, answered, r, &r->call,
		                       &why);
	free(text);
	if (rc < 0) {
		call_failed(r, phase, why.buf);
		strbuf_release(&why);
		return;
	}
	strbuf_release(&why);
	r->phase = phase;
}

int plugin_run_start(struct attempt *a, const struct attempt_info *info, const void *config,
                     void **ret_state, struct strbuf *err)
{
	const struct plugin_config *c = config;
	if (!c || !c->pt) {
		strbuf_addstr(err, "this step's plugin is not installed here");
		return SP_EINVAL;
	}
	struct prun *r = xcalloc(1, sizeof(*r));
	r->a = a;
	r->c = c;
	r->loop = info->svc->loop;
	r->env = plugin_env(c->pt, info->svc->minimal_env);
	size_t n = 0;
	while (info->secret_values && info->secret_values[n])
		n++;
	r->secrets = xcalloc(n + 1, sizeof(*r->secrets));
	for (size_t i = 0; i < n; i++)
		r->secrets[i] = xstrdup(info->secret_values[i]);
	r->base =
	    json_pack("{si ss s{ss ss ss si} so}", "protocol", PLUGIN_PROTOCOL, "idempotencyKey",
	              info->idempotency_key ? info->idempotency_key : "", "attempt", "executionId",
	              info->execution_id, "stage", info->stage_name, "step", info->step_plan->name,
	              "number", info->attempt, "config", json_deep_copy(c->fields));
	uv_timer_init(r->loop, &r->timer);
	r->timer.data = r;
	r->phase = PH_IDLE;
	*ret_state = r;
	json_t *h = info->reattaching ? json_object_get(info->handle, "handle") : NULL;
	if (h && (c->pt->type.flags & STEP_NO_WAIT)) {
		/* started before a crash: the no-wait form is over */
		r->handle = json_incref(h);
		json_t *out = json_pack("{sO}", "handle", h);
		finish(r, true, out, NULL);
		json_decref(out);
		return 0;
	}
	if (h) {
		r->handle = json_incref(h);
		send_call(r, PH_STATUS); /* never start twice for one attempt */
	} else {
		send_call(r, PH_START); /* again, with the same key, after a crash */
	}
	return 0;
}

void plugin_run_cancel(struct attempt *a, void *state)
{
	(void)a;
	struct prun *r = state;
	if (r->cancelling)
		return;
	r->cancelling = true;
	if (r->phase == PH_START || r->phase == PH_STATUS)
		return; /* its answer sends cancel (start: once there is a handle) */
	uv_timer_stop(&r->timer);
	if (r->handle)
		send_call(r, PH_CANCEL);
	else
		finish(r, false, NULL, "cancelled");
}

void plugin_run_detach(void *state)
{
	prun_free(state);
}
