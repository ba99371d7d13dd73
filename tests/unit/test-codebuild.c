/*
 * test-codebuild.c - the CodeBuild runner (steps/codebuild-run.c) without
 * the binary and without the runtime: the step type's hooks are called
 * directly, the runtime's reports (attempt_started, attempt_ended,
 * attempt_progress) are recorded by this file, and AWS is a stub CodeBuild
 * served in-process on 127.0.0.1 (a thread per connection) that keeps
 * builds by idempotency token, ends them after a set number of polls and
 * stops them on StopBuild. Covers start, poll to success and failure,
 * cancel (with StartBuild still in flight), reattach with a recorded build
 * id and reattach after a stop before the id was recorded (the same build,
 * never a second one), NoWait, and a process with no AWS client.
 */
#include "unit.h"

#include "aws/aws.h"
#include "plan/plan.h"
#include "runtime/runner.h"
#include "util/alloc.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the stub CodeBuild ----------------------------------------------------- */

#define MAX_BUILDS 16

struct stub_build {
	char id[64];
	char token[128];
	int polls;    /* BatchGetBuilds that returned it */
	bool stopped; /* StopBuild was called */
};

static struct {
	pthread_mutex_t lock;
	int fd;
	int port;
	struct stub_build builds[MAX_BUILDS];
	int nbuilds;
	int starts;     /* StartBuild calls */
	int stops;      /* StopBuild calls */
	int end_after;  /* a build ends on this poll (0: the first) */
	char final[32]; /* its status then: SUCCEEDED, FAILED */
	char last_source[128];
	char last_env[256];
} stub = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct stub_build *stub_find(const char *id)
{
	for (int i = 0; i < stub.nbuilds; i++)
		if (!strcmp(stub.builds[i].id, id))
			return &stub.builds[i];
	return NULL;
}

/* Answers one CodeBuild call (the lock is held). Returns the JSON answer. */
static json_t *stub_call(const char *op, json_t *in)
{
	if (!strcmp(op, "StartBuild")) {
		const char *token = json_string_value(json_object_get(in, "idempotencyToken"));
		for (int i = 0; token && i < stub.nbuilds; i++)
			if (!strcmp(stub.builds[i].token, token))
				return json_pack("{s{ss sf}}", "build", "id", stub.builds[i].id,
				                 "startTime", 1700000000.0);
		stub.starts++;
		struct stub_build *b = &stub.builds[stub.nbuilds++];
		snprintf(b->id, sizeof(b->id), "%s:%d",
		         json_string_value(json_object_get(in, "projectName")), stub.nbuilds);
		snprintf(b->token, sizeof(b->token), "%s", token ? token : "");
		const char *sv = json_string_value(json_object_get(in, "sourceVersion"));
		snprintf(stub.last_source, sizeof(stub.last_source), "%s", sv ? sv : "");
		char *env = json_dumps(json_object_get(in, "environmentVariablesOverride"),
		                       JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(stub.last_env, sizeof(stub.last_env), "%s", env ? env : "");
		free(env);
		return json_pack("{s{ss sf}}", "build", "id", b->id, "startTime", 1700000000.0);
	}
	if (!strcmp(op, "StopBuild")) {
		struct stub_build *b = stub_find(json_string_value(json_object_get(in, "id")));
		stub.stops++;
		if (b)
			b->stopped = true;
		return json_pack("{s{ss}}", "build", "id", b ? b->id : "");
	}
	if (!strcmp(op, "BatchGetBuilds")) {
		json_t *list = json_array();
		size_t i;
		json_t *id;
		json_array_foreach(json_object_get(in, "ids"), i, id)
		{
			struct stub_build *b = stub_find(json_string_value(id));
			if (!b)
				continue;
			const char *status = b->stopped                   ? "STOPPED"
			                     : b->polls >= stub.end_after ? stub.final
			                                                  : "IN_PROGRESS";
			b->polls++;
			json_array_append_new(list, json_pack("{ss ss ss sf}", "id", b->id,
			                                      "buildStatus", status, "currentPhase",
			                                      "BUILD", "startTime", 1700000000.0));
		}
		return json_pack("{so}", "builds", list);
	}
	return json_pack("{s[]}", "ids"); /* ListBuildsForProject: no history */
}

/* Reads one request from fd: its X-Amz-Target and body. Returns false at EOF. */
static bool read_request(int fd, char target[128], char **ret_body)
{
	char head[8192];
	size_t n = 0;
	while (n < sizeof(head) - 1) {
		ssize_t r = read(fd, head + n, 1);
		if (r <= 0)
			return false;
		n++;
		if (n >= 4 && !memcmp(head + n - 4, "\r\n\r\n", 4))
			break;
	}
	head[n] = '\0';
	size_t len = 0;
	*target = '\0';
	for (char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
		if (!strncasecmp(line + 2, "Content-Length:", 15))
			len = (size_t)atol(line + 17);
		if (!strncasecmp(line + 2, "X-Amz-Target:", 13))
			sscanf(line + 15, "%*[^.].%127[A-Za-z]", target);
	}
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

static void *stub_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char target[128], *body;
	while (read_request(fd, target, &body)) {
		json_t *in = json_loads(body, 0, NULL);
		free(body);
		pthread_mutex_lock(&stub.lock);
		json_t *out = stub_call(target, in);
		pthread_mutex_unlock(&stub.lock);
		json_decref(in);
		char *text = json_dumps(out, JSON_COMPACT);
		json_decref(out);
		char head[256];
		int hn = snprintf(head, sizeof(head),
		                  "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
		                  "Content-Length: %zu\r\n\r\n",
		                  strlen(text));
		bool ok = send(fd, head, (size_t)hn, MSG_NOSIGNAL) == hn &&
		          send(fd, text, strlen(text), MSG_NOSIGNAL) == (ssize_t)strlen(text);
		free(text);
		if (!ok)
			break;
	}
	close(fd);
	return NULL;
}

static void *stub_accept(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(stub.fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		pthread_t t;
		pthread_create(&t, NULL, stub_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

static void stub_reset(int end_after, const char *final)
{
	pthread_mutex_lock(&stub.lock);
	memset(stub.builds, 0, sizeof(stub.builds));
	stub.nbuilds = stub.starts = stub.stops = 0;
	stub.end_after = end_after;
	snprintf(stub.final, sizeof(stub.final), "%s", final);
	pthread_mutex_unlock(&stub.lock);
}

/* ---- the runtime's side, recorded --------------------------------------------- */

struct attempt {
	int started, progress, ended;
	bool ok;
	json_t *handle, *details;
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
	json_decref(data);
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
	memset(a, 0, sizeof(*a));
}

/* ---- fixtures ------------------------------------------------------------------ */

static uv_loop_t loop;
static struct step_services svc;
static struct plan *plan;

static const char plan_text[] =
    "{\"stages\": [{\"name\": \"build\", \"steps\": ["
    " {\"name\": \"wait\", \"type\": \"CodeBuild\", \"codeBuildName\": \"app\","
    "  \"sourceVersion\": {\"type\": \"branch\", \"value\": \"main\"},"
    "  \"environmentVariableOverrides\": [{\"name\": \"MODE\", \"value\": \"fast\"}]},"
    " {\"name\": \"nowait\", \"type\": \"CodeBuildNoWait\", \"codeBuildName\": \"app\"}"
    "]}]}";

static int setup(void **state)
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
	pthread_t t;
	pthread_create(&t, NULL, stub_accept, NULL);
	pthread_detach(t);

	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", stub.port);
	setenv("AWS_ENDPOINT_URL", url, 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	setenv("AWS_REGION", "eu-west-1", 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SESSION_TOKEN");

	uv_loop_init(&loop);
	svc = (struct step_services){ .loop = &loop, .aws = aws_new(&loop) };

	struct diag_list dl = DIAG_LIST_INIT;
	struct strbuf err = STRBUF_INIT;
	struct doc *doc = NULL;
	int r = doc_parse("test.json", plan_text, strlen(plan_text), DOC_JSONC, &doc, &dl);
	if (r == 0)
		r = plan_from_doc(doc, NULL, 0, &plan, &dl, &err);
	doc_free(doc);
	diag_list_release(&dl);
	strbuf_release(&err);
	return r;
}

static int teardown(void **state)
{
	(void)state;
	plan_free(plan);
	aws_free(svc.aws);
	while (uv_run(&loop, UV_RUN_DEFAULT) != 0)
		;
	uv_loop_close(&loop);
	shutdown(stub.fd, SHUT_RDWR);
	close(stub.fd);
	return 0;
}

static const struct plan_step *step_at(int i)
{
	return &plan->stages[0].steps[i];
}

static struct attempt_info info_for(int step, const char *key, const json_t *handle)
{
	return (struct attempt_info){ .execution_id = "exec1",
		                      .idempotency_key = key,
		                      .step = step,
		                      .attempt = 1,
		                      .step_plan = step_at(step),
		                      .stage_name = "build",
		                      .workdir = "/",
		                      .handle = handle,
		                      .reattaching = handle != NULL,
		                      .svc = &svc };
}

/* Runs the loop until the attempt has ended (a stuck runner fails the test
 * after a minute, rather than hanging it). */
static void run_until_ended(struct attempt *a)
{
	time_t give_up = time(NULL) + 60;
	while (!a->ended && time(NULL) < give_up)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(a->ended, 1);
}

static void *start_step(struct attempt *a, int step, const char *key, const json_t *handle)
{
	const struct plan_step *ps = step_at(step);
	struct attempt_info info = info_for(step, key, handle);
	struct strbuf err = STRBUF_INIT;
	void *st = NULL;
	assert_int_equal(ps->type->start(a, &info, ps->config, &st, &err), 0);
	assert_int_equal(err.len, 0);
	strbuf_release(&err);
	return st;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_config_bound_once(void **state)
{
	(void)state;
	const struct plan_step *ps = step_at(0);
	assert_string_equal(ps->type->name, "CodeBuild");
	assert_non_null(ps->config);
	assert_true(ps->type->flags & STEP_REATTACH);
	assert_non_null(ps->type->start);
	assert_non_null(ps->type->cancel);
	assert_non_null(ps->type->detach);
}

static void test_start_poll_success(void **state)
{
	(void)state;
	stub_reset(1, "SUCCEEDED");
	struct attempt a = { 0 };
	start_step(&a, 0, "exec1/0/0/1", NULL);
	run_until_ended(&a);
	assert_int_equal(a.started, 1);
	assert_string_equal(json_string_value(json_object_get(a.handle, "buildId")), "app:1");
	assert_true(a.ok);
	assert_string_equal(json_string_value(json_object_get(a.details, "buildStatus")),
	                    "SUCCEEDED");
	assert_int_equal(a.progress, 1); /* the BUILD phase, seen while in progress */
	assert_int_equal(stub.starts, 1);
	/* The typed config went into StartBuild as CodeBuild reads it. */
	assert_string_equal(stub.last_source, "refs/heads/main");
	assert_string_equal(stub.last_env, "[{\"name\":\"MODE\",\"value\":\"fast\",\"type\":"
	                                   "\"PLAINTEXT\"}]");
	attempt_clear(&a);
}

static void test_start_poll_failure(void **state)
{
	(void)state;
	stub_reset(0, "FAILED");
	struct attempt a = { 0 };
	start_step(&a, 0, "exec1/0/0/2", NULL);
	run_until_ended(&a);
	assert_false(a.ok);
	const char *error = json_string_value(json_object_get(a.details, "error"));
	assert_non_null(error);
	assert_non_null(strstr(error, "FAILED"));
	attempt_clear(&a);
}

static void test_cancel_while_starting(void **state)
{
	(void)state;
	stub_reset(100, "SUCCEEDED");
	struct attempt a = { 0 };
	void *st = start_step(&a, 0, "exec1/0/0/3", NULL);
	/* StartBuild is in flight: the build is stopped once it exists. */
	step_at(0)->type->cancel(&a, st);
	step_at(0)->type->cancel(&a, st); /* twice is the same */
	run_until_ended(&a);
	assert_false(a.ok);
	assert_string_equal(json_string_value(json_object_get(a.details, "buildStatus")),
	                    "STOPPED");
	assert_int_equal(stub.starts, 1);
	assert_int_equal(stub.stops, 1);
	attempt_clear(&a);
}

static void test_reattach_with_handle(void **state)
{
	(void)state;
	stub_reset(0, "SUCCEEDED");
	/* A build a previous process started and recorded. */
	pthread_mutex_lock(&stub.lock);
	snprintf(stub.builds[0].id, sizeof(stub.builds[0].id), "app:7");
	stub.nbuilds = 1;
	pthread_mutex_unlock(&stub.lock);
	json_t *handle = json_pack("{ss}", "buildId", "app:7");
	struct attempt a = { 0 };
	start_step(&a, 0, "exec1/0/0/4", handle);
	run_until_ended(&a);
	json_decref(handle);
	assert_true(a.ok);
	assert_int_equal(a.started, 0); /* its StepStarted is in the history already */
	assert_int_equal(stub.starts, 0);
	attempt_clear(&a);
}

static void test_reattach_after_stop_before_id(void **state)
{
	(void)state;
	stub_reset(0, "SUCCEEDED");
	/* The first process sends StartBuild and stops before recording the id. */
	struct attempt first = { 0 };
	void *st = start_step(&first, 0, "exec1/0/0/5", NULL);
	while (!first.started)
		uv_run(&loop, UV_RUN_ONCE);
	step_at(0)->type->detach(st);
	/* The next one starts the attempt again with the same key. */
	struct attempt again = { 0 };
	start_step(&again, 0, "exec1/0/0/5", NULL);
	run_until_ended(&again);
	assert_true(again.ok);
	assert_string_equal(json_string_value(json_object_get(again.handle, "buildId")),
	                    json_string_value(json_object_get(first.handle, "buildId")));
	assert_int_equal(stub.starts, 1); /* one build, never two */
	assert_int_equal(first.ended, 0); /* detached: not reported */
	attempt_clear(&first);
	attempt_clear(&again);
}

static void test_nowait(void **state)
{
	(void)state;
	stub_reset(100, "SUCCEEDED");
	struct attempt a = { 0 };
	start_step(&a, 1, "exec1/0/1/1", NULL);
	run_until_ended(&a);
	assert_true(a.ok);
	assert_int_equal(a.started, 1);
	assert_string_equal(json_string_value(json_object_get(a.details, "buildId")), "app:1");
	attempt_clear(&a);
}

static void test_no_aws_client(void **state)
{
	(void)state;
	struct step_services none = { .loop = &loop };
	struct attempt_info info = info_for(0, "exec1/0/0/6", NULL);
	info.svc = &none;
	struct attempt a = { 0 };
	struct strbuf err = STRBUF_INIT;
	void *st = NULL;
	const struct plan_step *ps = step_at(0);
	assert_true(ps->type->start(&a, &info, ps->config, &st, &err) < 0);
	assert_non_null(strstr(err.buf, "AWS client"));
	assert_int_equal(a.started + a.ended, 0);
	strbuf_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_bound_once),
		cmocka_unit_test(test_start_poll_success),
		cmocka_unit_test(test_start_poll_failure),
		cmocka_unit_test(test_cancel_while_starting),
		cmocka_unit_test(test_reattach_with_handle),
		cmocka_unit_test(test_reattach_after_stop_before_id),
		cmocka_unit_test(test_nowait),
		cmocka_unit_test(test_no_aws_client),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
