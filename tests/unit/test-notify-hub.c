/*
 * test-notify-hub.c - the channel interface (src/notify/channel-type.h) and
 * the hub (notify/hub.h): the one retry rule of the notifier with a kind
 * whose send is injected (passing failures tried three times, final ones
 * once, CHANNEL_ONE_ATTEMPT kinds once, errors named after the channel);
 * the built-in terminal and log channels' formats; SNS topics named by
 * their ARN; fan-out to lists and default channels with unknown names and
 * skips; cancelling, and freeing the hub with sends in flight; built-in
 * kinds that a configuration cannot name.
 */
#include "unit.h"

#include "notify/hub.h"
#include "notify/notify-internal.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 2026-01-01T00:00:00Z */
#define T0 1767225600000LL

/* ---- a kind whose attempts the test scripts ----------------------------------------------------
 */

/* The script: what each attempt answers (then ok), and what was sent. */
struct script {
	int fail;       /* attempts that fail before one succeeds */
	bool retryable; /* their failures are passing */
	int attempts;
	char bodies[4][128];
};

static void no_free(void *p)
{
	(void)p;
}

static int format_fake(const struct channel *c, const struct notice_text *t,
                       struct channel_request *req, char **error)
{
	if (!strcmp(t->message, "unformattable")) {
		*error = xstrdup("cannot format that");
		return -1;
	}
	req->body = xstrfmt("%s|%s|%s", t->kind, t->title, t->message);
	req->len = strlen(req->body);
	req->data = c->config; /* the script, borrowed */
	req->data_free = no_free;
	return 0;
}

static void send_fake(struct notify_delivery *d)
{
	struct channel_request *req = notify_request(d);
	struct script *s = req->data;
	snprintf(s->bodies[s->attempts & 3], sizeof(s->bodies[0]), "%s", req->body);
	if (s->attempts++ < s->fail)
		notify_attempt_done(d, false, xstrfmt("boom %d", s->attempts), s->retryable, 0);
	else
		notify_attempt_done(d, true, NULL, false, 0);
}

static const struct channel_type fake = {
	.name = "fake",
	.what = "a fake channel",
	.release = no_free,
	.format = format_fake,
	.send = send_fake,
};

static const struct channel_type fake_once = {
	.name = "fake",
	.what = "a fake channel",
	.flags = CHANNEL_ONE_ATTEMPT,
	.release = no_free,
	.format = format_fake,
	.send = send_fake,
};

/* ---- results -----------------------------------------------------------------------------------
 */

struct outcome {
	int calls;
	bool ok;
	char error[256];
	char receipt[64];
};

static void done(void *arg, bool ok, const char *error)
{
	struct outcome *o = arg;
	o->calls++;
	o->ok = ok;
	snprintf(o->error, sizeof(o->error), "%s", error ? error : "");
}

/* Results of hub sends, in arrival order. */
struct results {
	int n;
	struct {
		char channel[64];
		bool ok, unknown, cancelled;
		char error[256];
	} r[8];
};

static void hub_done(void *arg, const struct notify_result *r)
{
	struct results *rs = arg;
	assert_true(rs->n < 8);
	snprintf(rs->r[rs->n].channel, 64, "%s", r->channel);
	rs->r[rs->n].ok = r->ok;
	rs->r[rs->n].unknown = r->unknown;
	rs->r[rs->n].cancelled = r->cancelled;
	snprintf(rs->r[rs->n].error, 256, "%s", r->error ? r->error : "");
	rs->n++;
}

static const struct notice note = {
	.kind = "notify",
	.subject = "Release 3.2",
	.message = "v3.2 is out\nsee the notes",
	.execution_id = "r-123",
	.stage = "prod",
	.step = "Tell",
	.time_ms = T0,
};

/* ---- the retry rule ----------------------------------------------------------------------------
 */

static struct outcome deliver(const struct channel_type *type, struct script *s,
                              const struct notice *n)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct notifier *nf = notifier_new(&loop, NULL);
	notifier_set_retry_delays(nf, 1, 2);
	struct channel *c = channel_new("x", type, s);
	struct outcome o = { 0 };
	notify_send(nf, c, n, done, &o);
	channel_free(c);              /* the delivery copied what it needs */
	assert_int_equal(o.calls, 0); /* never inside the call that sent */
	uv_run(&loop, UV_RUN_DEFAULT);
	notifier_free(nf);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(o.calls, 1);
	return o;
}

static void test_retry_passing(void **state)
{
	(void)state;
	struct script s = { .fail = 2, .retryable = true };
	struct outcome o = deliver(&fake, &s, &note);
	assert_true(o.ok);
	assert_int_equal(s.attempts, 3);
	/* the same request each time */
	assert_string_equal(s.bodies[0], "notify|Release 3.2|v3.2 is out\nsee the notes");
	assert_string_equal(s.bodies[2], s.bodies[0]);

	struct script all = { .fail = 5, .retryable = true };
	o = deliver(&fake, &all, &note);
	assert_false(o.ok);
	assert_int_equal(all.attempts, 3); /* three attempts in all */
	assert_string_equal(o.error, "fake channel \"x\": boom 3 (3 attempts)");
}

static void test_retry_final(void **state)
{
	(void)state;
	struct script s = { .fail = 1, .retryable = false };
	struct outcome o = deliver(&fake, &s, &note);
	assert_false(o.ok);
	assert_int_equal(s.attempts, 1);
	assert_string_equal(o.error, "fake channel \"x\": boom 1");

	/* a kind that is tried once (SNS: its client retries) */
	struct script once = { .fail = 1, .retryable = true };
	o = deliver(&fake_once, &once, &note);
	assert_false(o.ok);
	assert_int_equal(once.attempts, 1);

	/* a request that cannot be made is not tried at all */
	struct script never = { 0 };
	struct notice bad = note;
	bad.message = "unformattable";
	o = deliver(&fake, &never, &bad);
	assert_false(o.ok);
	assert_int_equal(never.attempts, 0);
	assert_string_equal(o.error, "fake channel \"x\": cannot format that");
}

/* ---- built-in kinds ----------------------------------------------------------------------------
 */

struct shown {
	int n;
	char id[32];
	int64_t time_ms;
	char text[256];
};

static void show(void *arg, const char *execution_id, int64_t time_ms, const char *text)
{
	struct shown *s = arg;
	s->n++;
	snprintf(s->id, sizeof(s->id), "%s", execution_id ? execution_id : "");
	s->time_ms = time_ms;
	snprintf(s->text, sizeof(s->text), "%s", text);
}

static void test_builtin_channels(void **state)
{
	(void)state;
	char dir[] = "/tmp/steppy-test-hub.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *log = xstrfmt("%s/notifications.log", dir);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct shown shown = { 0 };
	struct notify_hub_options o = { .log_path = log, .terminal = show, .terminal_arg = &shown };
	struct notify_hub *h = notify_hub_new(&loop, NULL, &o);
	assert_true(notify_hub_has(h, "terminal"));
	assert_true(notify_hub_has(h, "log"));
	assert_true(notify_hub_has(h, "arn:aws:sns:eu-west-1:123456789012:releases"));
	assert_false(notify_hub_has(h, "slack"));
	assert_null(notify_hub_find(h, "terminal")); /* not a configured channel */
	struct results rs = { 0 };
	assert_non_null(notify_hub_send(h, "terminal", &note, hub_done, &rs));
	assert_non_null(notify_hub_send(h, "log", &note, hub_done, &rs));
	/* an SNS topic without an AWS client: one attempt, its own error text */
	assert_non_null(notify_hub_send(h, "arn:aws:sns:eu-west-1:123456789012:releases", &note,
	                                hub_done, &rs));
	assert_null(notify_hub_send(h, "nowhere", &note, hub_done, &rs));
	assert_int_equal(rs.n, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(rs.n, 3);
	for (int i = 0; i < 3; i++) {
		bool sns = !strncmp(rs.r[i].channel, "arn:", 4);
		assert_true(rs.r[i].ok == !sns);
		if (sns)
			assert_string_equal(rs.r[i].error, "no AWS client to publish with");
	}
	assert_int_equal(shown.n, 1);
	assert_string_equal(shown.id, "r-123");
	assert_int_equal(shown.time_ms, T0);
	assert_string_equal(shown.text, "Release 3.2: v3.2 is out\nsee the notes");
	char *data = NULL;
	size_t len;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(read_file_capped(log, 4096, &data, &len, &err), 0);
	assert_string_equal(data, "2026-01-01T00:00:00Z r-123 Tell: [Release 3.2] v3.2 is out see "
	                          "the notes\n");
	free(data);
	strbuf_release(&err);
	notify_hub_free(h);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	unlink(log);
	rmdir(dir);
	free(log);
}

/* The built-in log follows the one retry rule: a file that cannot be written is tried
 * three times, then the error names the channel (a warning for the Notify step). */
static void test_builtin_log_retried(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct notify_hub_options o = { .log_path = "/nonexistent-steppy-dir/notifications.log" };
	struct notify_hub *h = notify_hub_new(&loop, NULL, &o);
	notifier_set_retry_delays(notify_hub_notifier(h), 1, 2);
	struct results rs = { 0 };
	assert_non_null(notify_hub_send(h, "log", &note, hub_done, &rs));
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(rs.n, 1);
	assert_false(rs.r[0].ok);
	assert_string_equal(rs.r[0].error,
	                    "log channel \"log\": cannot append to "
	                    "/nonexistent-steppy-dir/notifications.log: No such file or directory "
	                    "(3 attempts)");
	notify_hub_free(h);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* The SNS request of a topic a Notify step names: the message as written, its subject. */
static void test_sns_topic_format(void **state)
{
	(void)state;
	struct channel *c = sns_topic_channel_new("arn:aws:sns:eu-west-1:123456789012:releases");
	struct notice_text t;
	notice_text_init(&t, &note, T0);
	struct channel_request req = { 0 };
	char *error = NULL;
	assert_int_equal(c->type->format(c, &t, &req, &error), 0);
	assert_string_equal(req.body, "v3.2 is out\nsee the notes");
	const struct sns_config *sc = c->config;
	assert_string_equal(sc->region, "eu-west-1");
	assert_null(c->what); /* its errors name the topic themselves */
	req.data_free(req.data);
	free(req.body);
	notice_text_release(&t);
	channel_free(c);
}

/* ---- fan-out -----------------------------------------------------------------------------------
 */

static struct channel *fake_channel(const char *name, struct script *s)
{
	return channel_new(name, &fake, s);
}

static void test_fanout(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct script sa = { 0 }, sb = { .fail = 9, .retryable = false };
	struct channel *cs[] = { fake_channel("a", &sa), fake_channel("b", &sb) };
	const char *defaults[] = { "a", "b" };
	struct notify_hub_options o = {
		.channels = cs, .nchannels = 2, .defaults = defaults, .ndefaults = 2
	};
	struct notify_hub *h = notify_hub_new(&loop, NULL, &o);
	assert_false(notify_hub_has(h, "log")); /* no log path: no log channel */
	assert_string_equal(notify_hub_type(h, "a"), "fake");
	struct results rs = { 0 };
	/* the default channels, but those skipped */
	const char *skip[] = { "b", NULL };
	assert_int_equal(notify_hub_fanout(h, NULL, skip, &note, hub_done, &rs), 1);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].channel, "a");
	assert_true(rs.r[0].ok);
	/* a list: every name gets its result, unknown ones too */
	struct doc *doc = NULL;
	struct diag_list dl = DIAG_LIST_INIT;
	const char *yaml = "[a, b, gone]";
	assert_int_equal(doc_parse("l.yaml", yaml, strlen(yaml), DOC_YAML, &doc, &dl), 0);
	rs.n = 0;
	assert_int_equal(notify_hub_fanout(h, doc->root, NULL, &note, hub_done, &rs), 3);
	assert_int_equal(rs.n, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(rs.n, 3);
	for (int i = 0; i < 3; i++) {
		if (!strcmp(rs.r[i].channel, "a"))
			assert_true(rs.r[i].ok);
		else if (!strcmp(rs.r[i].channel, "b"))
			assert_string_equal(rs.r[i].error, "fake channel \"b\": boom 1");
		else
			assert_true(rs.r[i].unknown && !rs.r[i].ok);
	}
	doc_free(doc);
	diag_list_release(&dl);
	notify_hub_free(h);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	channel_free(cs[0]);
	channel_free(cs[1]);
}

/* A cancelled send is never reported; freeing the hub reports those in flight as cancelled. */
static void test_cancel_and_free(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct script s = { .fail = 9, .retryable = true };
	struct channel *cs[] = { fake_channel("a", &s) };
	struct notify_hub_options o = { .channels = cs, .nchannels = 1 };
	struct notify_hub *h = notify_hub_new(&loop, NULL, &o);
	notifier_set_retry_delays(notify_hub_notifier(h), 60000, 60000);
	struct results rs = { 0 };
	notify_hub_cancel(notify_hub_send(h, "a", &note, hub_done, &rs));
	notify_hub_send(h, "a", &note, hub_done, &rs);
	uv_run(&loop, UV_RUN_NOWAIT); /* the first attempt fails; the next waits a minute */
	assert_int_equal(rs.n, 0);
	notify_hub_free(h);
	assert_int_equal(rs.n, 1);
	assert_true(rs.r[0].cancelled);
	assert_false(rs.r[0].ok);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	channel_free(cs[0]);
}

/* Built-in kinds are the hub's: a configuration cannot name them. */
static void test_builtin_not_configurable(void **state)
{
	(void)state;
	struct diag_list dl = DIAG_LIST_INIT;
	struct doc *doc = NULL;
	const char *yaml = "type: terminal\n";
	assert_int_equal(doc_parse("c.yaml", yaml, strlen(yaml), DOC_YAML, &doc, &dl), 0);
	struct vctx v = { .doc = doc, .diags = &dl };
	strbuf_init(&v.ptr, SIZE_MAX);
	struct channel *c = NULL;
	assert_int_equal(channel_parse(&v, "t", doc->root, &c), SP_EINVAL);
	assert_null(c);
	assert_int_equal(dl.len, 1);
	assert_non_null(strstr(dl.items[0].message,
	                       "\"type\" must be one of slack, teams, webhook, email, sns, log, "
	                       "found \"terminal\""));
	assert_null(channel_type_find("terminal"));
	assert_ptr_equal(channel_type_find("sns"), &channel_sns);
	strbuf_release(&v.ptr);
	diag_list_release(&dl);
	doc_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_passing),
		cmocka_unit_test(test_retry_final),
		cmocka_unit_test(test_builtin_channels),
		cmocka_unit_test(test_builtin_log_retried),
		cmocka_unit_test(test_sns_topic_format),
		cmocka_unit_test(test_fanout),
		cmocka_unit_test(test_cancel_and_free),
		cmocka_unit_test(test_builtin_not_configurable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
