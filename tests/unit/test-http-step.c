/*
 * test-http-step.c - the Http step type's rules (steps/http-step.h):
 * expectStatus parsing and matching, JSON pointers into an answer, poll
 * value matching; and its field validation through the real validator
 * (messages, JSON pointers, checks after variable substitution); and its
 * runner without the runtime: the hooks are called directly, the runtime's
 * reports (attempt_started, attempt_ended, attempt_progress) are recorded
 * here, and the server is a stub on 127.0.0.1 (a thread per connection)
 * that records requests. Covers the request and the polling, reattaching
 * in the poll phase (polls, never sends the request again), after a stop
 * during a POST (not sent again) and during a PUT (sent again), cancel,
 * detach, and secrets masked in what is recorded. The binary against a
 * server is tests/cli/t0080-http-step.sh.
 */
#include "unit.h"

#include "http/http.h"
#include "plan/plan.h"
#include "plan/validate.h"
#include "runtime/runner.h"
#include "steps/http-step.h"
#include "util/alloc.h"
#include "util/strbuf.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- expectStatus ---------------------------------------------------------- */

static void test_status_parse(void **state)
{
	(void)state;
	int lo = 0, hi = 0;
	assert_int_equal(http_status_parse("2xx", &lo, &hi), 0);
	assert_int_equal(lo, 200);
	assert_int_equal(hi, 299);
	assert_int_equal(http_status_parse("5XX", &lo, &hi), 0);
	assert_int_equal(lo, 500);
	assert_int_equal(hi, 599);
	assert_int_equal(http_status_parse("201", &lo, &hi), 0);
	assert_int_equal(lo, 201);
	assert_int_equal(hi, 201);
	const char *bad[] = {
		"", "2", "20", "2000", "6xx", "0xx", "2x1", "x01", "abc", "-20", "2 0"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(http_status_parse(bad[i], &lo, &hi), -1);
}

static void test_status_set(void **state)
{
	(void)state;
	struct http_status_set set = { .n = 3 };
	set.r[0].lo = set.r[0].hi = 200;
	set.r[1].lo = set.r[1].hi = 201;
	set.r[2].lo = 300;
	set.r[2].hi = 399;
	assert_true(http_status_in(&set, 200));
	assert_true(http_status_in(&set, 201));
	assert_true(http_status_in(&set, 302));
	assert_false(http_status_in(&set, 202));
	assert_false(http_status_in(&set, 0));
	assert_false(http_status_in(&set, 404));
	struct strbuf sb = STRBUF_INIT;
	http_status_describe(&set, &sb);
	assert_string_equal(sb.buf, "200, 201 or 3xx");
	strbuf_release(&sb);
}

/* ---- JSON pointers and matching -------------------------------------------- */

static void test_json_pointer(void **state)
{
	(void)state;
	json_t *doc = json_loads("{\"state\": \"done\", \"items\": [{\"s\": 1}, {\"s\": 2}],"
	                         " \"a/b\": 3, \"m~n\": 4, \"\": 5, \"nested\": {\"x\": null}}",
	                         0, NULL);
	assert_non_null(doc);
	assert_ptr_equal(http_json_pointer(doc, ""), doc);
	assert_string_equal(json_string_value(http_json_pointer(doc, "/state")), "done");
	assert_int_equal(json_integer_value(http_json_pointer(doc, "/items/1/s")), 2);
	assert_int_equal(json_integer_value(http_json_pointer(doc, "/a~1b")), 3);
	assert_int_equal(json_integer_value(http_json_pointer(doc, "/m~0n")), 4);
	assert_int_equal(json_integer_value(http_json_pointer(doc, "/")), 5);
	assert_true(json_is_null(http_json_pointer(doc, "/nested/x")));
	/* absent or malformed: NULL, never a crash */
	const char *none[] = { "state",    "/missing",     "/items/2",          "/items/01",
		               "/items/-", "/items/x",     "/state/0",          "/a~2b",
		               "/m~",      "/items/1/s/t", "/items/99999999999" };
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		assert_null(http_json_pointer(doc, none[i]));
	json_decref(doc);
}

static void test_value_matches(void **state)
{
	(void)state;
	json_t *done = json_string("done");
	json_t *one = json_integer(1);
	json_t *one_f = json_real(1.0);
	json_t *list = json_pack("[ss]", "done", "ok");
	json_t *null = json_null();
	assert_true(http_value_matches(done, done));
	assert_true(http_value_matches(done, list));
	assert_true(http_value_matches(one, one_f));
	assert_true(http_value_matches(one_f, one));
	assert_false(http_value_matches(one, done));
	assert_false(http_value_matches(null, done));
	assert_true(http_value_matches(null, null));
	assert_false(http_value_matches(NULL, done)); /* absent never matches */
	assert_false(http_value_matches(NULL, null));
	json_t *running = json_string("running");
	assert_false(http_value_matches(running, list));
	json_decref(done);
	json_decref(one);
	json_decref(one_f);
	json_decref(list);
	json_decref(null);
	json_decref(running);
}

/* ---- validation -------------------------------------------------------------- */

/*
 * The diagnostics of a plan of one step (the step's JSON members given),
 * with one variable V set to var (or NULL: no variables), as
 * "POINTER: MESSAGE" lines. Caller frees.
 */
static char *diags_for(const char *step_members, const char *var)
{
	struct strbuf text = STRBUF_INIT;
	strbuf_addf(&text,
	            "{%s\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Http\", "
	            "\"name\": \"h\", %s}]}]}",
	            var ? "\"variables\": {\"V\": null}, " : "", step_members);
	struct diag_list dl = DIAG_LIST_INIT;
	struct doc *doc = NULL, *bound = NULL;
	struct strbuf err = STRBUF_INIT;
	if (doc_parse("t.json", text.buf, text.len, DOC_JSONC, &doc, &dl) == 0 &&
	    plan_validate(doc, false, &dl) == 0) {
		struct var_value v = { "V", var };
		if (plan_bind(doc, var ? &v : NULL, var ? 1 : 0, &bound, &err) == 0)
			plan_validate(bound, true, &dl);
	}
	struct strbuf out = STRBUF_INIT;
	for (size_t i = 0; i < dl.len; i++)
		strbuf_addf(&out, "%s: %s\n", dl.items[i].pointer ? dl.items[i].pointer : "",
		            dl.items[i].message);
	strbuf_addstr(&out, err.buf);
	doc_free(doc);
	doc_free(bound);
	diag_list_release(&dl);
	strbuf_release(&err);
	strbuf_release(&text);
	return strbuf_detach(&out, NULL);
}

static void expect_diags(const char *members, const char *var, const char *expected)
{
	char *got = diags_for(members, var);
	if (strcmp(got, expected) != 0)
		fail_msg("for %s\nexpected:\n%sgot:\n%s", members, expected, got);
	free(got);
}

#define P "/stages/0/steps/0"

static void test_valid_steps(void **state)
{
	(void)state;
	expect_diags("\"url\": \"https://example.com/x?y=1\"", NULL, "");
	expect_diags("\"method\": \"POST\", \"url\": \"http://127.0.0.1:8080/deploy\", "
	             "\"headers\": {\"Authorization\": {\"value\": \"Bearer x\", \"secret\": true},"
	             " \"X-A\": \"a\\tb\"}, \"body\": {\"a\": [1, 2]}, "
	             "\"expectStatus\": [200, \"3xx\"], \"requestTimeoutSeconds\": 5, "
	             "\"followRedirects\": true, \"timeoutSeconds\": 60, \"retry\": {}, "
	             "\"poll\": {\"url\": \"http://h/status\", \"intervalSeconds\": 2, "
	             "\"until\": {\"pointer\": \"/state\", \"equals\": [\"done\", 1, null]}, "
	             "\"failWhen\": {\"pointer\": \"\", \"equals\": false}}",
	             NULL, "");
	expect_diags("\"url\": \"${var.V}/x\", \"expectStatus\": 204", "https://h", "");
}

static void test_invalid_fields(void **state)
{
	(void)state;
	expect_diags("\"url\": \"ftp://h\"", NULL,
	             P "/url: \"ftp://h\" is not an http:// or https:// URL\n");
	expect_diags("\"url\": \"http:///x\"", NULL, P "/url: \"http:///x\" names no host\n");
	expect_diags("\"url\": \"http://h/a b\"", NULL,
	             P "/url: a URL may not contain spaces or control characters (write a "
	               "space as %20)\n");
	expect_diags("\"url\": \"http://h\", \"method\": \"FETCH\"", NULL,
	             P "/method: \"method\" must be one of GET, POST, PUT, PATCH, DELETE, HEAD, "
	               "found \"FETCH\"\n");
	expect_diags("\"url\": \"http://h\", \"body\": \"x\"", NULL,
	             P "/body: a GET request has no body\n");
	expect_diags("\"url\": \"http://h\", \"method\": \"HEAD\", \"body\": {}", NULL,
	             P "/body: a HEAD request has no body\n");
	expect_diags("\"url\": \"http://h\", \"expectStatus\": 700", NULL,
	             P "/expectStatus: an HTTP status is a whole number from 100 to 599\n");
	expect_diags("\"url\": \"http://h\", \"expectStatus\": []", NULL,
	             P "/expectStatus: \"expectStatus\" must not be an empty list\n");
	expect_diags("\"url\": \"http://h\", \"requestTimeoutSeconds\": 3601", NULL,
	             P "/requestTimeoutSeconds: \"requestTimeoutSeconds\" must be between 1 and "
	               "3600 seconds (1h), found 3601\n");
}

static void test_invalid_headers(void **state)
{
	(void)state;
	expect_diags("\"url\": \"http://h\", \"headers\": {\"Idempotency-Key\": \"k\"}", NULL,
	             P "/headers/Idempotency-Key: steppy sets the Idempotency-Key header itself\n");
	expect_diags("\"url\": \"http://h\", \"headers\": {\"host\": \"k\"}", NULL,
	             P "/headers/host: steppy sets the Host header itself\n");
	expect_diags("\"url\": \"http://h\", \"headers\": {\"X-A\": \"1\", \"x-a\": \"2\"}", NULL,
	             P "/headers/x-a: header \"x-a\" is given twice (names ignore case)\n");
	expect_diags("\"url\": \"http://h\", \"headers\": {\"X:A\": \"1\"}", NULL,
	             P "/headers/X:A: \"X:A\" is not a header name (letters, digits and "
	               "!#$%&'*+-.^_`|~)\n");
	expect_diags("\"url\": \"http://h\", \"headers\": {\"X-A\": {\"secret\": true}}", NULL,
	             P "/headers/X-A/value: a header value needs a \"value\" field\n");
	/* A value that becomes two headers once a variable is substituted. */
	expect_diags("\"url\": \"http://h\", \"headers\": {\"X-A\": \"${var.V}\"}",
	             "a\r\nX-Injected: 1",
	             P "/headers/X-A: a header value may not contain line breaks or control "
	               "characters (after substituting variables)\n");
}

static void test_invalid_poll(void **state)
{
	(void)state;
	expect_diags("\"url\": \"http://h\", \"method\": \"POST\", \"poll\": {\"until\": "
	             "{\"pointer\": \"/s\", \"equals\": 1}}",
	             NULL,
	             P "/poll: polls are GET requests: a POST step that polls names the URL to "
	               "poll (poll.url); its own request is sent once\n");
	expect_diags("\"url\": \"http://h\", \"poll\": {}", NULL,
	             P "/poll/until: a poll needs a \"until\" field\n");
	expect_diags("\"url\": \"http://h\", \"poll\": {\"until\": {\"pointer\": \"s\", "
	             "\"equals\": []}, \"intervalSeconds\": 0}",
	             NULL,
	             P "/poll/until/pointer: \"s\" is not a JSON pointer (\"/status\", "
	               "\"/items/0/state\"; \"\" for the whole answer)\n" P
	               "/poll/until/equals: an empty list of values matches nothing\n" P
	               "/poll/intervalSeconds: \"intervalSeconds\" must be between 1 and 86400 "
	               "seconds (1d), found 0\n");
	expect_diags("\"url\": \"http://h\", \"poll\": {\"until\": {\"pointer\": \"/s\", "
	             "\"equals\": \"\"}}",
	             NULL, "");
	expect_diags("\"url\": \"http://h\", \"poll\": {\"until\": {\"pointer\": \"/a~2\", "
	             "\"equals\": 1}}",
	             NULL,
	             P "/poll/until/pointer: in a JSON pointer ~ must be followed by 0 (for ~) or "
	               "1 (for /)\n");
}

/* ---- the runner: a stub server ------------------------------------------------ */

#define SECRET "Bearer tok-0123456789abcdef"

static struct {
	pthread_mutex_t lock;
	int fd, port;
	int posts, puts, gets; /* requests seen */
	int done_after;        /* GET /poll answers "done" from this GET on (1: the first) */
	char last_key[128];    /* Idempotency-Key of the last POST or PUT */
	int conns;             /* connection threads still running */
	pthread_t acceptor;
} stub = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Reads one request head and body; false at EOF. */
static bool stub_read(int fd, char *head, size_t cap, char **ret_body)
{
	size_t n = 0;
	while (n < cap - 1) {
		ssize_t r = read(fd, head + n, 1);
		if (r <= 0)
			return false;
		n++;
		if (n >= 4 && !memcmp(head + n - 4, "\r\n\r\n", 4))
			break;
	}
	head[n] = '\0';
	size_t len = 0;
	for (char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n"))
		if (!strncasecmp(l + 2, "Content-Length:", 15))
			len = (size_t)atol(l + 17);
	char *body = xcalloc(1, len + 1);
	for (size_t got = 0; got < len;) {
		ssize_t r = read(fd, body + got, len - got);
		if (r <= 0) {
			free(body);
			return false;
		}
		got += (size_t)r;
	}
	*ret_body = body;
	return true;
}

/* The answer to one request (the lock is held): /start 201, /poll the state,
 * /echo the request head (quoting its Authorization header). */
static char *stub_answer(const char *head, int *status)
{
	char method[16] = "", path[128] = "";
	sscanf(head, "%15s %127s", method, path);
	const char *key = strcasestr(head, "\r\nIdempotency-Key: ");
	if (!strcmp(method, "POST") || !strcmp(method, "PUT")) {
		stub.posts += !strcmp(method, "POST");
		stub.puts += !strcmp(method, "PUT");
		snprintf(stub.last_key, sizeof(stub.last_key), "%.*s",
		         key ? (int)strcspn(key + 19, "\r") : 0, key ? key + 19 : "");
	} else {
		stub.gets++;
	}
	*status = 200;
	if (!strcmp(path, "/start")) {
		*status = 201;
		return xstrdup("{\"id\": 7}");
	}
	if (!strcmp(path, "/poll"))
		return xstrfmt("{\"state\": \"%s\"}",
		               stub.gets >= stub.done_after ? "done" : "running");
	json_t *j = json_pack("{ss}", "head", head);
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

static void *stub_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char head[8192], *body;
	while (stub_read(fd, head, sizeof(head), &body)) {
		free(body);
		int status;
		pthread_mutex_lock(&stub.lock);
		char *text = stub_answer(head, &status);
		pthread_mutex_unlock(&stub.lock);
		char h[256];
		int hn = snprintf(h, sizeof(h),
		                  "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
		                  "Content-Length: %zu\r\n\r\n",
		                  status, strlen(text));
		bool ok = send(fd, h, (size_t)hn, MSG_NOSIGNAL) == hn &&
		          send(fd, text, strlen(text), MSG_NOSIGNAL) == (ssize_t)strlen(text);
		free(text);
		if (!ok)
			break;
	}
	close(fd);
	pthread_mutex_lock(&stub.lock);
	stub.conns--;
	pthread_mutex_unlock(&stub.lock);
	return NULL;
}

/* Accepts until the listening socket is shut down (teardown joins it). */
static void *stub_accept(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(stub.fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		pthread_mutex_lock(&stub.lock);
		stub.conns++;
		pthread_mutex_unlock(&stub.lock);
		pthread_t t;
		pthread_create(&t, NULL, stub_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

static void stub_reset(int done_after)
{
	pthread_mutex_lock(&stub.lock);
	stub.posts = stub.puts = stub.gets = 0;
	stub.done_after = done_after;
	stub.last_key[0] = '\0';
	pthread_mutex_unlock(&stub.lock);
}

/* ---- the runtime's side, recorded ------------------------------------------------ */

struct attempt {
	int started, progress, ended;
	bool ok;
	json_t *handle, *details, *notice; /* notice: the last progress data */
};

void attempt_started(struct attempt *a, json_t *handle)
{
	a->started++;
	json_decref(a->handle);
	a->handle = handle;
}

void attempt_ended(struct attempt *a, bool ok, json_t *details)
{
	a->ended++;
	a->ok = ok;
	json_decref(a->details);
	a->details = details;
}

void attempt_progress(struct attempt *a, json_t *data)
{
	a->progress++;
	json_decref(a->notice);
	a->notice = data;
}

bool attempt_lost(const struct attempt *a)
{
	(void)a;
	return false;
}

static void attempt_clear(struct attempt *a)
{
	json_decref(a->handle);
	json_decref(a->details);
	json_decref(a->notice);
	memset(a, 0, sizeof(*a));
}

static uv_loop_t loop;
static struct step_services svc;
static struct plan *plan;

/* The steps, by index: 0 POST + poll, 1 PUT, 2 GET /echo with a secret header,
 * 3 the same polled (the whole answer is the value: it never matches). */
static int runner_setup(void **state)
{
	(void)state;
	stub.fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = { .sin_family = AF_INET,
		                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(addr);
	if (bind(stub.fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(stub.fd, 16) < 0 ||
	    getsockname(stub.fd, (struct sockaddr *)&addr, &alen) < 0)
		return -1;
	stub.port = ntohs(addr.sin_port);
	pthread_create(&stub.acceptor, NULL, stub_accept, NULL);
	uv_loop_init(&loop);
	svc = (struct step_services){ .loop = &loop, .http = http_new(&loop) };
	char *text = xstrfmt(
	    "{\"stages\": [{\"name\": \"s\", \"steps\": ["
	    " {\"name\": \"deploy\", \"type\": \"Http\", \"method\": \"POST\","
	    "  \"url\": \"http://127.0.0.1:%d/start\", \"body\": {\"v\": 1}, \"expectStatus\": 201,"
	    "  \"poll\": {\"url\": \"http://127.0.0.1:%d/poll\", \"intervalSeconds\": 1,"
	    "   \"until\": {\"pointer\": \"/state\", \"equals\": \"done\"}}},"
	    " {\"name\": \"put\", \"type\": \"Http\", \"method\": \"PUT\","
	    "  \"url\": \"http://127.0.0.1:%d/start\", \"expectStatus\": 201},"
	    " {\"name\": \"echo\", \"type\": \"Http\", \"url\": \"http://127.0.0.1:%d/echo\","
	    "  \"headers\": {\"Authorization\": {\"value\": \"" SECRET "\", \"secret\": true}}},"
	    " {\"name\": \"echo poll\", \"type\": \"Http\", \"url\": \"http://127.0.0.1:%d/echo\","
	    "  \"headers\": {\"Authorization\": {\"value\": \"" SECRET "\", \"secret\": true}},"
	    "  \"poll\": {\"until\": {\"pointer\": \"\", \"equals\": 0}}}"
	    "]}]}",
	    stub.port, stub.port, stub.port, stub.port, stub.port);
	struct diag_list dl = DIAG_LIST_INIT;
	struct strbuf err = STRBUF_INIT;
	struct doc *doc = NULL;
	int r = doc_parse("test.json", text, strlen(text), DOC_JSONC, &doc, &dl);
	if (r == 0)
		r = plan_from_doc(doc, NULL, 0, &plan, &dl, &err);
	free(text);
	doc_free(doc);
	diag_list_release(&dl);
	strbuf_release(&err);
	return r;
}

static int runner_teardown(void **state)
{
	(void)state;
	plan_free(plan);
	http_free(svc.http);
	while (uv_run(&loop, UV_RUN_DEFAULT) != 0)
		;
	uv_loop_close(&loop);
	shutdown(stub.fd, SHUT_RDWR);
	pthread_join(stub.acceptor, NULL);
	close(stub.fd);
	/* The client's connections are closed: their threads end (5 s at most). */
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&stub.lock);
		int n = stub.conns;
		pthread_mutex_unlock(&stub.lock);
		if (!n)
			break;
		usleep(10000);
	}
	return 0;
}

/* Starts step i (reattaching when asked, with handle or none). */
static void *start_step(struct attempt *a, int i, bool reattaching, const json_t *handle,
                        const char *const *secrets)
{
	const struct plan_step *ps = &plan->stages[0].steps[i];
	struct attempt_info info = { .execution_id = "exec1",
		                     .idempotency_key = "exec1/0/0/1",
		                     .step = i,
		                     .attempt = 1,
		                     .step_plan = ps,
		                     .stage_name = "s",
		                     .workdir = "/",
		                     .handle = handle,
		                     .reattaching = reattaching,
		                     .svc = &svc,
		                     .secret_values = secrets };
	struct strbuf err = STRBUF_INIT;
	void *st = NULL;
	assert_int_equal(ps->type->start(a, &info, ps->config, &st, &err), 0);
	assert_int_equal(err.len, 0);
	strbuf_release(&err);
	return st;
}

/* Runs the loop until the attempt has ended (a stuck runner fails the test
 * after a minute rather than hanging it). */
static void run_until_ended(struct attempt *a)
{
	time_t give_up = time(NULL) + 60;
	while (!a->ended && time(NULL) < give_up)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(a->ended, 1);
}

static const char *error_of(const struct attempt *a)
{
	return json_string_value(json_object_get(a->details, "error"));
}

static void test_request_then_poll(void **state)
{
	(void)state;
	stub_reset(2);
	struct attempt a = { 0 };
	start_step(&a, 0, false, NULL, NULL);
	run_until_ended(&a);
	assert_true(a.ok);
	assert_int_equal(a.started, 1);
	assert_string_equal(json_string_value(json_object_get(a.handle, "phase")), "poll");
	assert_int_equal(json_integer_value(json_object_get(a.handle, "status")), 201);
	assert_int_equal(a.progress, 1); /* "running" once */
	assert_string_equal(json_string_value(json_object_get(a.details, "value")), "done");
	assert_int_equal(json_integer_value(json_object_get(a.details, "polls")), 2);
	assert_int_equal(stub.posts, 1);
	assert_int_equal(stub.gets, 2);
	assert_string_equal(stub.last_key, "exec1/0/0/1");
	attempt_clear(&a);
}

static void test_reattach_polling(void **state)
{
	(void)state;
	stub_reset(1);
	json_t *handle = json_pack("{ssss}", "phase", "poll", "method", "POST");
	struct attempt a = { 0 };
	start_step(&a, 0, true, handle, NULL);
	run_until_ended(&a);
	assert_true(a.ok);
	assert_int_equal(a.started, 0);  /* recorded already */
	assert_int_equal(stub.posts, 0); /* never sent again */
	assert_int_equal(stub.gets, 1);
	json_decref(handle);
	attempt_clear(&a);
}

static void test_reattach_post_not_sent_again(void **state)
{
	(void)state;
	stub_reset(1);
	struct attempt a = { 0 };
	start_step(&a, 0, true, NULL, NULL);
	assert_int_equal(a.ended, 1); /* at once, from start() */
	assert_false(a.ok);
	assert_non_null(strstr(error_of(&a), "it may have reached the server, so it is not sent "
	                                     "again (it carried Idempotency-Key: exec1/0/0/1)"));
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(stub.posts + stub.gets, 0);
	attempt_clear(&a);
}

static void test_reattach_put_sent_again(void **state)
{
	(void)state;
	stub_reset(1);
	struct attempt a = { 0 };
	start_step(&a, 1, true, NULL, NULL);
	run_until_ended(&a);
	assert_true(a.ok);
	assert_int_equal(stub.puts, 1);
	assert_string_equal(stub.last_key, "exec1/0/0/1"); /* the same key */
	attempt_clear(&a);
}

static void test_cancel_and_detach_while_polling(void **state)
{
	(void)state;
	stub_reset(1000);
	struct attempt a = { 0 };
	void *st = start_step(&a, 0, false, NULL, NULL);
	time_t give_up = time(NULL) + 30;
	while (!a.started && time(NULL) < give_up)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(a.started, 1);
	plan->stages[0].steps[0].type->cancel((struct attempt *)&a, st);
	assert_int_equal(a.ended, 1);
	assert_false(a.ok);
	assert_string_equal(error_of(&a), "cancelled while polling");
	attempt_clear(&a);

	struct attempt b = { 0 };
	json_t *handle = json_pack("{ss}", "phase", "poll");
	st = start_step(&b, 0, true, handle, NULL);
	plan->stages[0].steps[0].type->detach(st);
	for (int i = 0; i < 5; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(b.ended, 0); /* forgotten, not reported */
	json_decref(handle);
	attempt_clear(&b);
}

static void test_secrets_masked(void **state)
{
	(void)state;
	stub_reset(1);
	/* A process secret (a server's environment) the answer happens to quote. */
	const char *const secrets[] = { "exec1/0/0/1", NULL };
	struct attempt a = { 0 };
	start_step(&a, 2, false, NULL, secrets);
	run_until_ended(&a);
	assert_true(a.ok);
	char *text = json_dumps(a.details, JSON_COMPACT);
	assert_null(strstr(text, "tok-0123456789abcdef"));
	assert_null(strstr(text, "exec1/0/0/1"));
	assert_non_null(strstr(text, "Authorization: ****"));
	free(text);
	attempt_clear(&a);

	/* A polled value that is an object holding the secret: kept as masked text. */
	struct attempt b = { 0 };
	void *st = start_step(&b, 3, false, NULL, NULL);
	time_t give_up = time(NULL) + 30;
	while (!b.progress && time(NULL) < give_up)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(b.progress, 1);
	text = json_dumps(b.notice, JSON_COMPACT);
	assert_null(strstr(text, "tok-0123456789abcdef"));
	assert_non_null(strstr(text, "Authorization: ****"));
	free(text);
	plan->stages[0].steps[3].type->cancel((struct attempt *)&b, st);
	assert_int_equal(b.ended, 1);
	attempt_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_parse),    cmocka_unit_test(test_status_set),
		cmocka_unit_test(test_json_pointer),    cmocka_unit_test(test_value_matches),
		cmocka_unit_test(test_valid_steps),     cmocka_unit_test(test_invalid_fields),
		cmocka_unit_test(test_invalid_headers), cmocka_unit_test(test_invalid_poll),
	};
	const struct CMUnitTest runner[] = {
		cmocka_unit_test(test_request_then_poll),
		cmocka_unit_test(test_reattach_polling),
		cmocka_unit_test(test_reattach_post_not_sent_again),
		cmocka_unit_test(test_reattach_put_sent_again),
		cmocka_unit_test(test_cancel_and_detach_while_polling),
		cmocka_unit_test(test_secrets_masked),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	return failed + cmocka_run_group_tests(runner, runner_setup, runner_teardown);
}
