/*
 * test-server.c - `steppy serve` in-process (src/server/): the server and a
 * runtime on a temporary store, listening on 127.0.0.1 at a free port, and
 * called over real HTTP with libcurl: /healthz, submitting, listing and
 * reading releases, bad input answered 400 with a JSON error body,
 * authentication (401) and roles (403) with API tokens, decisions (one and
 * several approvals), aborts and retries through the API reaching the
 * runtime and its store, live streams (a release's report once, then only
 * later events; ended by the shutdown), approval links (the page, its
 * form token and Origin check, a decision through it), the inbox directory
 * (a plan file starts one release; invalid plans and Exec get INVALID
 * results), and 503 while the store refuses writes.
 *
 * The runtime runs on its own thread as in `steppy serve`
 * (runtime-harness.h); the test thread is the HTTP client.
 */
#include "runtime-harness.h"

#include "server/server-internal.h"
#include "steps/services.h"
#include "util/fileio.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <sys/stat.h>

struct srv_fixture {
	struct rt_fixture rt;
	struct serve_config cfg;
	struct server *srv;
	char url[300]; /* where it listens */
};

/* Tokens of the configuration with tokens (their SHA-256 goes in it). */
#define VIEWER_TOKEN    "stp_viewer_token_for_tests"
#define OPERATOR_TOKEN  "stp_operator_token_for_tests"
#define APPROVER_TOKEN  "stp_approver_token_for_tests"
#define APPROVER2_TOKEN "stp_second_approver_token_for_tests"

static void sha256_hex(const char *text, char out[65])
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)text, strlen(text), h);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* Starts a server with configuration text (YAML), or the defaults when NULL
 * (no tokens: loopback only, everyone may do everything). */
static void start_server(struct srv_fixture *f, const char *config)
{
	struct diag_list dl = DIAG_LIST_INIT;
	if (config) {
		if (serve_config_parse("serve.yaml", config, strlen(config), &f->cfg, &dl) < 0)
			fail_msg("bad test configuration: %s", dl.len ? dl.items[0].message : "");
	} else {
		serve_config_defaults(&f->cfg);
	}
	diag_list_release(&dl);
	f->cfg.listen_host = "127.0.0.1";
	f->cfg.listen_port = 0; /* any free port */
	f->srv = server_new(&f->cfg, f->rt.path);
	/* The options of steppy serve. */
	struct runtime_options opts = { .observer = server_observer(f->srv),
		                        .keep_running = true,
		                        .exec_policy = &f->cfg.exec,
		                        .exec_minimal_env = true,
		                        .people = &f->cfg.people,
		                        .retry_store = true };
	rt_new(&f->rt, &opts);
	step_services_open(runtime_services(f->rt.rt));
	struct strbuf err = STRBUF_INIT;
	if (server_start(f->srv, f->rt.rt, &err) < 0)
		fail_msg("server_start: %s", err.buf);
	strbuf_release(&err);
	snprintf(f->url, sizeof(f->url), "%s", server_listen_url(f->srv));
	rt_start(&f->rt);
}

static int setup(void **state)
{
	struct srv_fixture *f = xcalloc(1, sizeof(*f));
	rt_setup(&f->rt, "server");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct srv_fixture *f = *state;
	/* The order of steppy serve: the runtime stops, then the server goes. */
	rt_stop(&f->rt);
	server_free(f->srv);
	rt_teardown(&f->rt);
	serve_config_release(&f->cfg);
	free(f);
	return 0;
}

/* ---- the client ------------------------------------------------------------------ */

struct answer {
	long status;
	json_t *json; /* the body, when it is JSON; else NULL */
	char *body;
	char *content_type;
};

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	strbuf_add(arg, data, size * n);
	return size * n;
}

static void answer_release(struct answer *a)
{
	json_decref(a->json);
	free(a->body);
	free(a->content_type);
	memset(a, 0, sizeof(*a));
}

/* One request: method, path (or a whole URL), a bearer token (or NULL), a body
 * (or NULL) of content_type (NULL: JSON), and one more header (or NULL). */
static struct answer call_ex(struct srv_fixture *f, const char *method, const char *path,
                             const char *token, const char *body, const char *content_type,
                             const char *header)
{
	CURL *c = curl_easy_init();
	assert_non_null(c);
	char url[512], auth[128];
	snprintf(url, sizeof(url), "%s%s", strncmp(path, "http", 4) ? f->url : "", path);
	struct curl_slist *headers = NULL;
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		headers = curl_slist_append(headers, auth);
	}
	char ctype[128];
	snprintf(ctype, sizeof(ctype), "Content-Type: %s",
	         content_type ? content_type : "application/json");
	if (body)
		headers = curl_slist_append(headers, ctype);
	if (header)
		headers = curl_slist_append(headers, header);
	struct strbuf out = STRBUF_INIT;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)DEADLINE_MS);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	}
	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		fail_msg("%s %s: %s", method, url, curl_easy_strerror(rc));
	struct answer a = { 0 };
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
	char *ct = NULL;
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	a.content_type = xstrdup(ct ? ct : "");
	a.body = strbuf_detach(&out, NULL);
	if (!strncmp(a.content_type, "application/json", 16))
		a.json = json_loads(a.body, 0, NULL);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return a;
}

static struct answer call(struct srv_fixture *f, const char *method, const char *path,
                          const char *token, const char *body)
{
	return call_ex(f, method, path, token, body, NULL, NULL);
}

/* Asserts the answer is status with a JSON error body of code. */
static void expect_error(struct answer *a, long status, const char *code)
{
	if (a->status != status)
		fail_msg("answered %ld, not %ld: %s", a->status, status, a->body);
	assert_non_null(a->json);
	json_t *e = json_object_get(a->json, "error");
	assert_true(json_is_object(e));
	assert_string_equal(json_string_value(json_object_get(e, "code")), code);
	assert_true(json_string_length(json_object_get(e, "message")) > 0);
}

static const char *str(const struct answer *a, const char *key)
{
	return json_string_value(json_object_get(a->json, key));
}

static const char *const human_plan =
    "{\"plan\": {\"stages\": [{\"name\": \"sign-off\", \"steps\": [{\"type\": \"Human\", "
    "\"name\": \"go\", \"message\": \"Go?\"}]}]}, \"name\": \"orders\"}";

/* ---- without tokens -------------------------------------------------------------------- */

static void test_health_submit_list_decide(void **state)
{
	struct srv_fixture *f = *state;
	start_server(f, NULL);
	struct answer a = call(f, "GET", "/healthz", NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(str(&a, "status"), "ok");
	assert_non_null(str(&a, "version"));
	answer_release(&a);

	a = call(f, "POST", "/api/v1/executions", NULL, human_plan);
	if (a.status != 201)
		fail_msg("submit answered %ld: %s", a.status, a.body);
	char id[16];
	snprintf(id, sizeof(id), "%s", str(&a, "id"));
	assert_string_equal(str(&a, "status"), "RUNNING");
	assert_string_equal(str(&a, "startedBy"), "anonymous");
	answer_release(&a);
	rt_wait_events(&f->rt, id, "StepStarted 0.0#1");

	a = call(f, "GET", "/api/v1/executions", NULL, NULL);
	assert_int_equal(a.status, 200);
	json_t *list = json_object_get(a.json, "executions");
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), id);
	answer_release(&a);

	char path[128];
	snprintf(path, sizeof(path), "/api/v1/executions/%s", id);
	a = call(f, "GET", path, NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.body, id));
	answer_release(&a);

	snprintf(path, sizeof(path), "/api/v1/executions/%s/steps/0/0/approve", id);
	a = call(f, "POST", path, NULL, "{\"comment\": \"ship it\"}");
	if (a.status != 200)
		fail_msg("approve answered %ld: %s", a.status, a.body);
	assert_string_equal(str(&a, "result"), "approved");
	answer_release(&a);
	rt_wait_status(&f->rt, id, "SUCCEEDED");
	struct event ev;
	rt_find_event(&f->rt, id, EV_HUMAN_DECISION, 0, 0, 1, &ev);
	assert_string_equal(json_string_value(json_object_get(ev.data, "comment")), "ship it");
	assert_string_equal(json_string_value(json_object_get(ev.data, "via")), "api");
	json_decref(ev.data);

	/* Decided already: a second decision is refused. */
	a = call(f, "POST", path, NULL, NULL);
	expect_error(&a, 409, "refused");
	answer_release(&a);
}

static void test_bad_input(void **state)
{
	struct srv_fixture *f = *state;
	start_server(f, NULL);
	/* Not JSON: where it breaks. */
	struct answer a = call(f, "POST", "/api/v1/executions", NULL, "{\"plan\": ");
	expect_error(&a, 400, "malformed-json");
	assert_non_null(strstr(a.body, "line 1"));
	answer_release(&a);
	/* JSON, but not an object. */
	a = call(f, "POST", "/api/v1/executions", NULL, "[1]");
	expect_error(&a, 400, "invalid-body");
	answer_release(&a);
	/* A field the endpoint does not take, by its pointer. */
	a = call(f, "POST", "/api/v1/executions", NULL, "{\"plan\": {}, \"colour\": \"red\"}");
	expect_error(&a, 400, "unknown-field");
	assert_non_null(strstr(a.body, "/colour"));
	answer_release(&a);
	/* The plan in a form the API does not take. */
	a = call(f, "POST", "/api/v1/executions", NULL, "{\"plan\": 5}");
	expect_error(&a, 400, "invalid-body");
	answer_release(&a);
	/* An invalid plan: each problem with its place. */
	a = call(f, "POST", "/api/v1/executions", NULL,
	         "{\"plan\": {\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", "
	         "\"name\": \"w\", \"seconds\": -1}]}]}}");
	expect_error(&a, 400, "invalid-plan");
	json_t *diags = json_object_get(json_object_get(a.json, "error"), "diagnostics");
	assert_true(json_array_size(diags) >= 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(diags, 0), "pointer")),
	                    "/stages/0/steps/0/seconds");
	answer_release(&a);
	/* Variables that are not strings. */
	a = call(f, "POST", "/api/v1/executions", NULL,
	         "{\"plan\": {}, \"variables\": {\"A\": 1}}");
	expect_error(&a, 400, "invalid-body");
	answer_release(&a);
	/* Parameters. */
	a = call(f, "GET", "/api/v1/executions?limit=0", NULL, NULL);
	expect_error(&a, 400, "invalid-parameter");
	answer_release(&a);
	a = call(f, "GET", "/api/v1/executions?status=LOST", NULL, NULL);
	expect_error(&a, 400, "invalid-parameter");
	answer_release(&a);
	a = call(f, "POST", "/api/v1/executions/abcdefghij/steps/x/0/approve", NULL, NULL);
	assert_int_equal(a.status, 400);
	answer_release(&a);
	/* What does not exist. */
	a = call(f, "GET", "/api/v1/executions/abcdefghij", NULL, NULL);
	expect_error(&a, 404, "not-found");
	answer_release(&a);
	a = call(f, "DELETE", "/api/v1/executions", NULL, NULL);
	assert_int_equal(a.status, 405);
	answer_release(&a);
	/* None of it started anything. */
	a = call(f, "GET", "/api/v1/executions", NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(a.json, "executions")), 0);
	answer_release(&a);
}

/* ---- with tokens ------------------------------------------------------------------------ */

static void start_with_tokens(struct srv_fixture *f)
{
	char v[65], o[65], ap[65], ap2[65];
	sha256_hex(VIEWER_TOKEN, v);
	sha256_hex(OPERATOR_TOKEN, o);
	sha256_hex(APPROVER_TOKEN, ap);
	sha256_hex(APPROVER2_TOKEN, ap2);
	char *config = xstrfmt("tokens:\n"
	                       "  - {name: vera, sha256: \"%s\", roles: [viewer]}\n"
	                       "  - {name: otto, sha256: \"%s\", roles: [viewer, operator]}\n"
	                       "  - {name: anna, sha256: \"%s\", roles: [viewer, approver]}\n"
	                       "  - {name: ben, sha256: \"%s\", roles: [approver]}\n",
	                       v, o, ap, ap2);
	start_server(f, config);
	free(config);
}

static void test_tokens_and_roles(void **state)
{
	struct srv_fixture *f = *state;
	start_with_tokens(f);
	/* /healthz is open to all. */
	struct answer a = call(f, "GET", "/healthz", NULL, NULL);
	assert_int_equal(a.status, 200);
	answer_release(&a);
	/* No token, or one the server does not know: 401. */
	a = call(f, "GET", "/api/v1/executions", NULL, NULL);
	expect_error(&a, 401, "unauthenticated");
	answer_release(&a);
	a = call(f, "GET", "/api/v1/executions", "stp_not_a_token", NULL);
	expect_error(&a, 401, "unauthenticated");
	answer_release(&a);
	/* A viewer reads but does not submit: 403, naming what is missing. */
	a = call(f, "GET", "/api/v1/executions", VIEWER_TOKEN, NULL);
	assert_int_equal(a.status, 200);
	answer_release(&a);
	a = call(f, "POST", "/api/v1/executions", VIEWER_TOKEN, human_plan);
	expect_error(&a, 403, "forbidden");
	assert_non_null(strstr(a.body, "operator"));
	answer_release(&a);

	a = call(f, "POST", "/api/v1/executions", OPERATOR_TOKEN, human_plan);
	if (a.status != 201)
		fail_msg("submit answered %ld: %s", a.status, a.body);
	assert_string_equal(str(&a, "startedBy"), "otto");
	char id[16], path[128];
	snprintf(id, sizeof(id), "%s", str(&a, "id"));
	answer_release(&a);
	rt_wait_events(&f->rt, id, "StepStarted 0.0#1");

	/* Decisions need the approver role. */
	snprintf(path, sizeof(path), "/api/v1/executions/%s/steps/0/0/approve", id);
	a = call(f, "POST", path, OPERATOR_TOKEN, NULL);
	expect_error(&a, 403, "forbidden");
	answer_release(&a);
	a = call(f, "POST", path, APPROVER_TOKEN, "{\"comment\": \"fine\"}");
	if (a.status != 200)
		fail_msg("approve answered %ld: %s", a.status, a.body);
	answer_release(&a);
	rt_wait_status(&f->rt, id, "SUCCEEDED");
	struct event ev;
	rt_find_event(&f->rt, id, EV_HUMAN_DECISION, 0, 0, 1, &ev);
	assert_string_equal(json_string_value(json_object_get(ev.data, "by")), "anna");
	json_decref(ev.data);
}

/* A server with tokens running a release of human_plan submitted by the
 * operator through the API; its id in id. */
static void start_human(struct srv_fixture *f, char id[16])
{
	start_with_tokens(f);
	struct answer a = call(f, "POST", "/api/v1/executions", OPERATOR_TOKEN, human_plan);
	assert_int_equal(a.status, 201);
	snprintf(id, 16, "%s", str(&a, "id"));
	answer_release(&a);
}

static void test_abort_through_api(void **state)
{
	struct srv_fixture *f = *state;
	char id[16], path[128];
	start_human(f, id);
	struct answer a;
	snprintf(path, sizeof(path), "/api/v1/executions/%s/abort", id);
	a = call(f, "POST", path, APPROVER_TOKEN, NULL);
	expect_error(&a, 403, "forbidden");
	answer_release(&a);
	a = call(f, "POST", path, OPERATOR_TOKEN, "{\"reason\": \"wrong build\"}");
	if (a.status != 200)
		fail_msg("abort answered %ld: %s", a.status, a.body);
	assert_string_equal(str(&a, "result"), "aborted");
	answer_release(&a);
	rt_wait_status(&f->rt, id, "ABORTED");
	struct event ev;
	rt_find_event(&f->rt, id, EV_ABORT_REQUESTED, -1, -1, 0, &ev);
	assert_string_equal(json_string_value(json_object_get(ev.data, "by")), "otto");
	assert_string_equal(json_string_value(json_object_get(ev.data, "reason")), "wrong build");
	json_decref(ev.data);
	/* The list filters by status. */
	a = call(f, "GET", "/api/v1/executions?status=aborted", VIEWER_TOKEN, NULL);
	assert_int_equal(a.status, 200);
	assert_int_equal(json_array_size(json_object_get(a.json, "executions")), 1);
	answer_release(&a);
	a = call(f, "GET", "/api/v1/executions?status=RUNNING", VIEWER_TOKEN, NULL);
	assert_int_equal(json_array_size(json_object_get(a.json, "executions")), 0);
	answer_release(&a);
}

static void test_retry_events_metrics(void **state)
{
	struct srv_fixture *f = *state;
	char id[16], path[128];
	start_human(f, id);
	struct answer a;
	/* A release that runs is not retried. */
	snprintf(path, sizeof(path), "/api/v1/executions/%s/retry", id);
	a = call(f, "POST", path, OPERATOR_TOKEN, NULL);
	expect_error(&a, 409, "refused");
	answer_release(&a);
	snprintf(path, sizeof(path), "/api/v1/executions/%s/abort", id);
	a = call(f, "POST", path, OPERATOR_TOKEN, NULL);
	assert_int_equal(a.status, 200);
	answer_release(&a);
	rt_wait_status(&f->rt, id, "ABORTED");
	/* An aborted one is continued by the server's runtime (a job on its loop). */
	snprintf(path, sizeof(path), "/api/v1/executions/%s/retry", id);
	a = call(f, "POST", path, OPERATOR_TOKEN, NULL);
	if (a.status != 200)
		fail_msg("retry answered %ld: %s", a.status, a.body);
	assert_string_equal(str(&a, "result"), "retrying");
	answer_release(&a);
	rt_wait_events(&f->rt, id, "ExecutionRedriven StageStarted 0 StepScheduled 0.0#2");
	snprintf(path, sizeof(path), "/api/v1/executions/%s/steps/0/0/approve", id);
	a = call(f, "POST", path, APPROVER_TOKEN, NULL);
	assert_int_equal(a.status, 200);
	answer_release(&a);
	rt_wait_status(&f->rt, id, "SUCCEEDED");
	/* The history through the API is the store's. */
	snprintf(path, sizeof(path), "/api/v1/executions/%s/events", id);
	a = call(f, "GET", path, VIEWER_TOKEN, NULL);
	assert_int_equal(a.status, 200);
	json_t *events = json_object_get(a.json, "events");
	struct event_list h;
	rt_history(&f->rt, id, &h);
	assert_int_equal(json_array_size(events), h.len);
	event_list_release(&h);
	answer_release(&a);
	/* Metrics: for viewers, in Prometheus' text format. */
	a = call(f, "GET", "/metrics", NULL, NULL);
	expect_error(&a, 401, "unauthenticated");
	answer_release(&a);
	a = call(f, "GET", "/metrics", VIEWER_TOKEN, NULL);
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.content_type, "text/plain"));
	assert_non_null(strstr(a.body, "# TYPE steppy_http_requests_total counter"));
	answer_release(&a);
}

/* While the store refuses writes the server says so: /healthz and changes
 * answer 503 with a JSON error, reads go on. */
static void test_store_down_503(void **state)
{
	struct srv_fixture *f = *state;
	/* A short busy timeout (of the runtime's connection), so the refusal comes soon. */
	store_busy_timeout(f->rt.st, 100);
	start_server(f, NULL);
	struct answer a = call(f, "POST", "/api/v1/executions", NULL,
	                       "{\"plan\": {\"stages\": [{\"name\": \"s\", \"steps\": "
	                       "[{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 2}]}]}}");
	assert_int_equal(a.status, 201);
	char id[16];
	snprintf(id, sizeof(id), "%s", str(&a, "id"));
	answer_release(&a);
	/* Another process holds the write lock when the Wait comes due. */
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->rt.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	char *h = rt_events(&f->rt, id);
	bool late = strstr(h, "TimerFired") != NULL;
	free(h);
	if (late) {
		sqlite3_close(db);
		skip(); /* a machine too slow to take the lock within 2 s proves nothing */
	}
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	for (;;) {
		a = call(f, "GET", "/healthz", NULL, NULL);
		if (a.status != 200 || rt_now_ms() > deadline)
			break;
		answer_release(&a);
		rt_sleep_ms(20);
	}
	expect_error(&a, 503, "store-unavailable");
	assert_string_equal(str(&a, "status"), "unhealthy");
	answer_release(&a);
	a = call(f, "POST", "/api/v1/executions", NULL, human_plan);
	expect_error(&a, 503, "store-unavailable");
	answer_release(&a);
	a = call(f, "GET", "/api/v1/executions", NULL, NULL);
	assert_int_equal(a.status, 200);
	answer_release(&a);
	/* The lock goes: the kept events are recorded, and all is well again. */
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	rt_wait_status(&f->rt, id, "SUCCEEDED");
	deadline = rt_now_ms() + DEADLINE_MS;
	for (;;) {
		a = call(f, "GET", "/healthz", NULL, NULL);
		if (a.status == 200 || rt_now_ms() > deadline)
			break;
		answer_release(&a);
		rt_sleep_ms(20);
	}
	assert_int_equal(a.status, 200);
	answer_release(&a);
}

static void test_several_approvals(void **state)
{
	struct srv_fixture *f = *state;
	start_with_tokens(f);
	struct answer a = call(f, "POST", "/api/v1/executions", OPERATOR_TOKEN,
	                       "{\"plan\": {\"stages\": [{\"name\": \"s\", \"steps\": "
	                       "[{\"type\": \"Human\", \"name\": \"go\", \"message\": \"Go?\", "
	                       "\"approvers\": [\"anna\", \"ben\"], \"minApprovals\": 2}]}]}}");
	if (a.status != 201)
		fail_msg("submit answered %ld: %s", a.status, a.body);
	char id[16], path[128];
	snprintf(id, sizeof(id), "%s", str(&a, "id"));
	answer_release(&a);
	/* The server records where it asked for approval. */
	rt_wait_events(&f->rt, id, "StepStarted 0.0#1 Notice 0.0#1");
	snprintf(path, sizeof(path), "/api/v1/executions/%s/steps/0/0/approve", id);
	/* One of two: recorded, the step still waits. */
	a = call(f, "POST", path, APPROVER_TOKEN, NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(str(&a, "result"), "approval recorded; more approvals are needed");
	answer_release(&a);
	/* The same person again: refused, for what the step allows now. */
	a = call(f, "POST", path, APPROVER_TOKEN, NULL);
	expect_error(&a, 409, "refused");
	answer_release(&a);
	/* A token without the approver's name in the list: not an approver. */
	a = call(f, "POST", path, OPERATOR_TOKEN, NULL);
	expect_error(&a, 403, "forbidden");
	answer_release(&a);
	a = call(f, "POST", path, APPROVER2_TOKEN, NULL);
	assert_int_equal(a.status, 200);
	assert_string_equal(str(&a, "result"), "approved");
	answer_release(&a);
	rt_wait_status(&f->rt, id, "SUCCEEDED");
	rt_expect_events(&f->rt, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "Notice 0.0#1 HumanDecision 0.0#1 HumanDecision 0.0#1 StageFinished 0 "
	                 "ExecutionFinished");
}

/* ---- live streams ------------------------------------------------------------------- */

/* A server-sent-events client on a thread of its own: it reads until the
 * text holds until (or the server ends the stream). */
struct stream_client {
	struct srv_fixture *f;
	char path[128];
	const char *until;
	pthread_mutex_t lock;
	struct strbuf text; /* what arrived, under lock */
	bool done;          /* the request is over, under lock */
	CURLcode rc;
	pthread_t thread;
};

static size_t stream_collect(char *data, size_t size, size_t n, void *arg)
{
	struct stream_client *c = arg;
	pthread_mutex_lock(&c->lock);
	strbuf_add(&c->text, data, size * n);
	bool enough = c->until && strstr(c->text.buf, c->until);
	pthread_mutex_unlock(&c->lock);
	return enough ? 0 : size * n; /* 0 ends the transfer */
}

static void *stream_main(void *arg)
{
	struct stream_client *c = arg;
	CURL *h = curl_easy_init();
	char url[512];
	snprintf(url, sizeof(url), "%s%s", c->f->url, c->path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stream_collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)DEADLINE_MS);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	c->rc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void stream_open(struct stream_client *c, struct srv_fixture *f, const char *path,
                        const char *until)
{
	memset(c, 0, sizeof(*c));
	c->f = f;
	c->until = until;
	snprintf(c->path, sizeof(c->path), "%s", path);
	pthread_mutex_init(&c->lock, NULL);
	c->text = (struct strbuf)STRBUF_INIT;
	assert_int_equal(pthread_create(&c->thread, NULL, stream_main, c), 0);
}

/* Waits until the stream has received text (or is over). */
static void stream_wait(struct stream_client *c, const char *text)
{
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		bool seen = strstr(c->text.buf, text) != NULL, over = c->done;
		pthread_mutex_unlock(&c->lock);
		if (seen)
			return;
		if (over || rt_now_ms() > deadline)
			fail_msg("the stream %s never sent \"%s\"", c->path, text);
		rt_sleep_ms(10);
	}
}

/* Waits for the client's end (c->text stays: release it). */
static void stream_close(struct stream_client *c)
{
	pthread_join(c->thread, NULL);
	pthread_mutex_destroy(&c->lock);
}

static size_t count(const char *text, const char *what)
{
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

static void test_streams(void **state)
{
	struct srv_fixture *f = *state;
	start_server(f, NULL);
	struct answer a = call(f, "POST", "/api/v1/executions", NULL, human_plan);
	assert_int_equal(a.status, 201);
	char id[16], path[128];
	snprintf(id, sizeof(id), "%s", str(&a, "id"));
	answer_release(&a);
	rt_wait_events(&f->rt, id, "StepStarted 0.0#1 Notice 0.0#1");
	/* A release's stream: its report once, then only the events after it. */
	struct stream_client one;
	snprintf(path, sizeof(path), "/api/v1/executions/%s/stream", id);
	stream_open(&one, f, path, "ExecutionFinished");
	stream_wait(&one, "event: execution\n");
	snprintf(path, sizeof(path), "/api/v1/executions/%s/steps/0/0/approve", id);
	a = call(f, "POST", path, NULL, NULL);
	assert_int_equal(a.status, 200);
	answer_release(&a);
	stream_close(&one);
	assert_int_equal(one.rc, CURLE_WRITE_ERROR); /* we ended it, having read enough */
	assert_int_equal(count(one.text.buf, "event: execution\n"), 1);
	assert_int_equal(count(one.text.buf, "\"type\":\"HumanDecision\""), 1);
	assert_int_equal(count(one.text.buf, "\"type\":\"ExecutionFinished\""), 1);
	/* what the report covered is not sent again */
	assert_int_equal(count(one.text.buf, "\"type\":\"StepStarted\""), 0);
	strbuf_release(&one.text);

	/* The list's stream stays open; the server's shutdown ends it. */
	struct stream_client list;
	stream_open(&list, f, "/api/v1/stream", NULL);
	stream_wait(&list, "event: executions\n");
	stream_wait(&list, id);
	rt_stop(&f->rt);
	server_free(f->srv);
	f->srv = NULL;
	stream_close(&list);
	assert_int_equal(list.rc, CURLE_OK);
	strbuf_release(&list.text);
}

/* ---- approval links ------------------------------------------------------------------ */

/* The value of the form field name in an HTML page (caller frees), or NULL. */
static char *form_field(const char *html, const char *name)
{
	char key[64];
	snprintf(key, sizeof(key), "name=\"%s\" value=\"", name);
	const char *p = strstr(html, key);
	if (!p)
		return NULL;
	p += strlen(key);
	return xstrndup(p, strcspn(p, "\""));
}

static void test_approval_link(void **state)
{
	struct srv_fixture *f = *state;
	char out[160];
	snprintf(out, sizeof(out), "%s/stdout.txt", f->rt.dir);
	/* Without channels the link goes to the server's log (stdout): caught here. */
	fflush(stdout);
	int saved = dup(1), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 1);
	close(fd);
	start_server(f, NULL);
	struct answer a = call(f, "POST", "/api/v1/executions", NULL, human_plan);
	assert_int_equal(a.status, 201);
	char id[16];
	snprintf(id, sizeof(id), "%s", str(&a, "id"));
	answer_release(&a);
	rt_wait_events(&f->rt, id, "StepStarted 0.0#1 Notice 0.0#1");
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	char *log = NULL;
	size_t len = 0;
	assert_int_equal(read_file_capped(out, 1 << 20, &log, &len, NULL), 0);
	const char *u = strstr(log, "http://");
	assert_non_null(u);
	char *url = xstrndup(u, strcspn(u, "\n"));
	free(log);
	assert_non_null(strstr(url, "/approvals/"));

	/* The page: GET changes nothing, and carries the form's token. */
	a = call(f, "GET", url, NULL, NULL);
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.content_type, "text/html"));
	char *csrf = form_field(a.body, "csrf");
	assert_non_null(csrf);
	answer_release(&a);
	/* A form from elsewhere, or with a wrong token, is refused. */
	char *body = xstrfmt("csrf=%s&decision=approve", csrf);
	a = call_ex(f, "POST", url, NULL, body, "application/x-www-form-urlencoded",
	            "Origin: https://evil.example");
	assert_int_equal(a.status, 403);
	answer_release(&a);
	a = call_ex(f, "POST", url, NULL, "csrf=00&decision=approve",
	            "application/x-www-form-urlencoded", NULL);
	assert_int_equal(a.status, 403);
	answer_release(&a);
	rt_expect_events(&f->rt, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "Notice 0.0#1");
	/* The page's own form decides, and goes back to the page. */
	free(body);
	body = xstrfmt("csrf=%s&decision=approve&comment=seen+it", csrf);
	a = call_ex(f, "POST", url, NULL, body, "application/x-www-form-urlencoded", NULL);
	assert_int_equal(a.status, 303);
	answer_release(&a);
	rt_wait_status(&f->rt, id, "SUCCEEDED");
	struct event ev;
	rt_find_event(&f->rt, id, EV_HUMAN_DECISION, 0, 0, 1, &ev);
	assert_string_equal(json_string_value(json_object_get(ev.data, "via")), "link");
	assert_string_equal(json_string_value(json_object_get(ev.data, "comment")), "seen it");
	json_decref(ev.data);
	/* Decided: the link offers nothing more. */
	a = call_ex(f, "POST", url, NULL, body, "application/x-www-form-urlencoded", NULL);
	assert_int_equal(a.status, 409);
	answer_release(&a);
	free(body);
	free(csrf);
	free(url);
}

/* ---- the inbox directory -------------------------------------------------------------- */

/* Writes text to dir/name as a writer should: under NAME.tmp, then renamed. */
static void drop_file(const char *dir, const char *name, const char *text)
{
	char tmp[256], path[256];
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(tmp, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* Waits until dir/NAME.result.json says status; returns it (caller frees). */
static json_t *wait_result(const char *dir, const char *name, const char *status)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s.result.json", dir, name);
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	for (;;) {
		json_t *r = json_load_file(path, 0, NULL);
		const char *st = json_string_value(json_object_get(r, "status"));
		if (st && !strcmp(st, status))
			return r;
		if (rt_now_ms() > deadline) {
			char *text = r ? json_dumps(r, 0) : NULL;
			fail_msg("%s never said %s: %s", path, status, text ? text : "(none)");
		}
		json_decref(r);
		rt_sleep_ms(20);
	}
}

static void test_inbox_directory(void **state)
{
	struct srv_fixture *f = *state;
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/inbox", f->rt.dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	char *config = xstrfmt("inbox: {directory: \"%s\", pollSeconds: 1}\n", dir);
	start_server(f, config);
	free(config);
	/* A plan dropped in starts one release; its result says which, then how it ended. */
	drop_file(dir, "release.json",
	          "{\"stages\": [{\"name\": \"s\", \"steps\": "
	          "[{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 0}]}]}");
	json_t *r = wait_result(dir, "release.json", "SUCCEEDED");
	const char *id = json_string_value(json_object_get(r, "id"));
	assert_non_null(id);
	struct exec_row row;
	assert_int_equal(store_get(f->rt.reader, id, &row, NULL), 0);
	assert_non_null(strstr(row.started_by, "inbox"));
	exec_row_release(&row);
	char path[256];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/release.json.result.json", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	json_decref(r);
	/* An invalid plan starts nothing; the result says where it is wrong. */
	drop_file(dir, "broken.yaml", "stages:\n  - name: s\n    steps: [{type: Wait, name: w}]\n");
	r = wait_result(dir, "broken.yaml", "INVALID");
	json_t *e = json_array_get(json_object_get(r, "errors"), 0);
	assert_true(json_integer_value(json_object_get(e, "line")) > 0);
	assert_true(json_string_length(json_object_get(e, "message")) > 0);
	json_decref(r);
	/* Exec is off by default: a plan with Exec is refused, naming the step. */
	drop_file(dir, "exec.json",
	          "{\"stages\": [{\"name\": \"s\", \"steps\": "
	          "[{\"type\": \"Exec\", \"name\": \"x\", \"command\": [\"true\"]}]}]}");
	r = wait_result(dir, "exec.json", "INVALID");
	char *text = json_dumps(r, 0);
	assert_non_null(strstr(text, "exec.enabled"));
	free(text);
	json_decref(r);
	/* One release in all. */
	struct answer a = call(f, "GET", "/api/v1/executions", NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(a.json, "executions")), 1);
	answer_release(&a);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_health_submit_list_decide, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens_and_roles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_through_api, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_events_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_approvals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_approval_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbox_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_down_503, setup, teardown),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return r;
}
