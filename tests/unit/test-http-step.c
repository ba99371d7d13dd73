/*
 * test-http-step.c - the Http step type's rules (steps/http-step.h):
 * expectStatus parsing and matching, JSON pointers into an answer, poll
 * value matching; and its field validation through the real validator
 * (messages, JSON pointers, checks after variable substitution). Running
 * it against a server is tests/cli/t0080-http-step.sh.
 */
#include "unit.h"

#include "plan/plan.h"
#include "plan/validate.h"
#include "steps/http-step.h"
#include "util/strbuf.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_parse),    cmocka_unit_test(test_status_set),
		cmocka_unit_test(test_json_pointer),    cmocka_unit_test(test_value_matches),
		cmocka_unit_test(test_valid_steps),     cmocka_unit_test(test_invalid_fields),
		cmocka_unit_test(test_invalid_headers), cmocka_unit_test(test_invalid_poll),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
