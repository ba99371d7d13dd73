/*
 * test-plugin.c - plugin step types (steps/plugin.h): describe answers read
 * into a field table (and every refusal), plugin fields checked by the real
 * validator (types, required, enum with did you mean, pattern, unknown
 * fields, after variables are bound), answers of start/status/cancel read
 * (poll bounds, handles, outputs, every refusal), the failure text of a
 * call, and calls run on a real libuv loop against small sh scripts (the
 * request on stdin, the time limit, the output cap, stderr in the message).
 * The binary with the example plugin is tests/cli/t0081-plugins.sh.
 */
#include "unit.h"

#include "plan/plan.h"
#include "plan/validate.h"
#include "steps/plugin.h"
#include "util/alloc.h"
#include "util/strbuf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOOD                                                                                       \
	"{\"protocol\": 1, \"type\": \"Deploy\", \"summary\": \"deploy a service\", "              \
	"\"timeoutSeconds\": 10, \"env\": [\"DEPLOY_TOKEN\"], \"fields\": ["                       \
	"{\"name\": \"service\", \"type\": \"string\", \"required\": true, "                       \
	"\"pattern\": \"^[a-z][a-z0-9-]*$\"},"                                                     \
	"{\"name\": \"mode\", \"type\": \"string\", \"enum\": [\"blue-green\", \"rolling\"]},"     \
	"{\"name\": \"replicas\", \"type\": \"integer\"},"                                         \
	"{\"name\": \"dryRun\", \"type\": \"boolean\"},"                                           \
	"{\"name\": \"labels\", \"type\": \"object\"},"                                            \
	"{\"name\": \"hosts\", \"type\": \"list\"}]}"

static void test_describe_good(void **state)
{
	(void)state;
	struct plugin_type *pt = NULL;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(plugin_describe_parse("/p/deploy", GOOD, strlen(GOOD), &pt, &err), 0);
	assert_string_equal(pt->type.name, "Deploy");
	assert_string_equal(pt->type.summary, "deploy a service");
	assert_string_equal(pt->path, "/p/deploy");
	assert_int_equal(pt->nfields, 6);
	assert_int_equal(pt->call_ms, 10000);
	assert_string_equal(pt->env[0], "DEPLOY_TOKEN");
	assert_null(pt->env[1]);
	assert_string_equal(pt->fields[0].name, "service");
	assert_int_equal(pt->fields[0].types, T_STRING);
	assert_int_equal(pt->fields[0].flags, F_REQUIRED);
	assert_string_equal(pt->patterns[0], "^[a-z][a-z0-9-]*$");
	assert_string_equal(pt->fields[1].choices[1], "rolling");
	assert_null(pt->fields[1].choices[2]);
	assert_int_equal(pt->fields[2].types, T_INTEGER);
	assert_int_equal(pt->fields[3].types, T_BOOL);
	assert_int_equal(pt->fields[4].types, T_OBJECT);
	assert_int_equal(pt->fields[5].types, T_ARRAY);
	assert_null(pt->fields[6].name);
	assert_true(pt->type.flags & STEP_REATTACH);
	assert_true(pt->type.flags & STEP_RETRYABLE);
	plugin_type_free(pt);
	strbuf_release(&err);
}

static void expect_refused(const char *text, const char *why)
{
	struct plugin_type *pt = NULL;
	struct strbuf err = STRBUF_INIT;
	int rc = plugin_describe_parse("/p/x", text, strlen(text), &pt, &err);
	if (rc == 0 || !strstr(err.buf, why)) {
		print_error("for %s\nexpected \"%s\"\n     got \"%s\" (rc %d)\n", text, why,
		            err.buf, rc);
		fail();
	}
	assert_null(pt);
	strbuf_release(&err);
}

static void test_describe_refused(void **state)
{
	(void)state;
	expect_refused("hello", "its describe answer is not JSON (line 1, column 5");
	expect_refused("[1]", "not a JSON object");
	expect_refused("{\"type\": \"A\"}", "it speaks protocol (none given)");
	expect_refused("{\"protocol\": 2, \"type\": \"A\"}",
	               "it speaks protocol 2; this steppy speaks protocol 1");
	expect_refused("{\"protocol\": 1}", "its \"type\" must be a name");
	expect_refused("{\"protocol\": 1, \"type\": \"a b\"}", "its \"type\" must be a name");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"type\": \"B\"}", "not JSON");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": {}}", "must be a list");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": [1]}",
	               "fields[0] is not an object");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": [{\"type\": \"string\"}]}",
	               "fields[0].name must be a name");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": [{\"name\": \"x\"}]}",
	               "field \"x\": type must be string, integer");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": [{\"name\": \"x\", "
	               "\"type\": \"date\"}]}",
	               "type must be");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": [{\"name\": "
	               "\"timeoutSeconds\", \"type\": \"integer\"}]}",
	               "field \"timeoutSeconds\" is a field of every step");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": [{\"name\": \"x\", "
	               "\"type\": \"string\"}, {\"name\": \"x\", \"type\": \"string\"}]}",
	               "field \"x\" is declared twice");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": [{\"name\": \"x\", "
	               "\"type\": \"integer\", \"enum\": [\"a\"]}]}",
	               "enum must be a list of 1 to 100 strings, on a string field");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": [{\"name\": \"x\", "
	               "\"type\": \"string\", \"enum\": [\"a\", 2]}]}",
	               "enum[1] is not a string");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": [{\"name\": \"x\", "
	               "\"type\": \"string\", \"pattern\": \"a(\"}]}",
	               "pattern is not a POSIX extended regular expression");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": [{\"name\": \"x\", "
	               "\"type\": \"string\", \"required\": \"yes\"}]}",
	               "required must be true or false");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"fields\": [{\"name\": \"x\", "
	               "\"type\": \"string\", \"default\": 1}]}",
	               "fields[0] has an unknown member \"default\"");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"env\": [\"STEPPY_DB\"]}",
	               "env[0] must be an environment variable name");
	expect_refused("{\"protocol\": 1, \"type\": \"A\", \"timeoutSeconds\": 0}",
	               "\"timeoutSeconds\" must be a whole number from 1 to 300");
	struct strbuf many = STRBUF_INIT;
	strbuf_addstr(&many, "{\"protocol\": 1, \"type\": \"A\", \"fields\": [");
	for (int i = 0; i <= PLUGIN_MAX_FIELDS; i++)
		strbuf_addf(&many, "%s{\"name\": \"f%d\", \"type\": \"string\"}", i ? "," : "", i);
	strbuf_addstr(&many, "]}");
	expect_refused(many.buf, "it declares 65 fields; at most 64");
	strbuf_release(&many);
	char *huge = xcalloc(PLUGIN_DESCRIBE_MAX + 2, 1);
	memset(huge, ' ', PLUGIN_DESCRIBE_MAX + 1);
	expect_refused(huge, "larger than 65536 bytes");
	free(huge);
}

/* ---- the validator on plugin fields ---- */

static void register_deploy(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	struct plugin_type *pt = NULL;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(plugin_describe_parse("/p/deploy", GOOD, strlen(GOOD), &pt, &err), 0);
	assert_int_equal(step_type_register(&pt->type), 0); /* kept for the process */
	strbuf_release(&err);
}

/* "POINTER: MESSAGE" lines for a plan of one Deploy step; V set to var. */
static char *diags_for(const char *members, const char *var)
{
	register_deploy();
	struct strbuf text = STRBUF_INIT;
	strbuf_addf(&text,
	            "{%s\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Deploy\", "
	            "\"name\": \"d\"%s%s}]}]}",
	            var ? "\"variables\": {\"V\": null}, " : "", *members ? ", " : "", members);
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
	if (strcmp(got, expected) != 0) {
		print_error("for %s\nexpected: %s\n     got: %s\n", members, expected, got);
		free(got);
		fail();
	}
	free(got);
}

#define P "/stages/0/steps/0"

static void test_validate_fields(void **state)
{
	(void)state;
	expect_diags("\"service\": \"web\", \"mode\": \"rolling\", \"replicas\": 3, "
	             "\"dryRun\": true, \"labels\": {}, \"hosts\": [\"a\"]",
	             NULL, "");
	expect_diags("", NULL, P "/service: a Deploy step needs a \"service\" field\n");
	expect_diags("\"service\": \"Web!\"", NULL,
	             P "/service: \"Web!\" does not match the pattern ^[a-z][a-z0-9-]*$\n");
	expect_diags("\"service\": \"web\", \"mode\": \"rollin\"", NULL,
	             P "/mode: \"mode\" must be one of blue-green, rolling, found \"rollin\"; "
	               "did you mean \"rolling\"?\n");
	expect_diags("\"service\": \"web\", \"replica\": 3", NULL,
	             P "/replica: unknown field \"replica\" in a Deploy step; did you "
	               "mean \"replicas\"?\n");
	expect_diags("\"service\": \"web\", \"replicas\": \"3\"", NULL,
	             P "/replicas: \"replicas\" must be a whole number, found the string \"3\" "
	               "(remove the quotes)\n");
	/* the pattern is checked once the variable is bound */
	expect_diags("\"service\": \"${var.V}\"", "api", "");
	expect_diags("\"service\": \"${var.V}\"", "API",
	             P "/service: \"API\" does not match the pattern ^[a-z][a-z0-9-]*$ (after "
	               "substituting variables)\n");
}

/* ---- answers ---- */

static void test_answers(void **state)
{
	(void)state;
	struct plugin_answer a;
	struct strbuf err = STRBUF_INIT;
#define PARSE(call, text) plugin_answer_parse(call, text, strlen(text), &a, &err)
	assert_int_equal(PARSE("start", "{\"protocol\": 1, \"handle\": {\"id\": 7}}"), 0);
	assert_int_equal(a.state, PLUGIN_RUNNING);
	assert_int_equal(json_integer_value(json_object_get(a.handle, "id")), 7);
	assert_int_equal(a.poll_ms, PLUGIN_POLL_DEFAULT_MS);
	plugin_answer_release(&a);
	assert_int_equal(PARSE("status", "{\"protocol\": 1, \"status\": \"running\", "
	                                 "\"pollSeconds\": 0.01, \"message\": \"m\"}"),
	                 0);
	assert_int_equal(a.poll_ms, PLUGIN_POLL_MIN_MS);
	assert_string_equal(a.message, "m");
	plugin_answer_release(&a);
	assert_int_equal(PARSE("status", "{\"protocol\": 1, \"status\": \"running\", "
	                                 "\"pollSeconds\": 100000}"),
	                 0);
	assert_int_equal(a.poll_ms, PLUGIN_POLL_MAX_MS);
	plugin_answer_release(&a);
	assert_int_equal(PARSE("status", "{\"protocol\": 1, \"status\": \"done\", "
	                                 "\"outputs\": {\"url\": \"u\"}}"),
	                 0);
	assert_int_equal(a.state, PLUGIN_DONE);
	assert_string_equal(json_string_value(json_object_get(a.outputs, "url")), "u");
	plugin_answer_release(&a);
	assert_int_equal(PARSE("start", "{\"protocol\": 1, \"status\": \"failed\", "
	                                "\"message\": \"quota\"}"),
	                 0);
	assert_int_equal(a.state, PLUGIN_FAILED);
	assert_null(a.handle);
	plugin_answer_release(&a);
	assert_int_equal(PARSE("cancel", "{\"protocol\": 1}"), 0);
	plugin_answer_release(&a);

	static const char *const bad[][3] = {
		{ "start", "nope", "its start answer is not JSON" },
		{ "start", "{\"protocol\": 2, \"handle\": 1}",
		  "speaks protocol 2; this steppy speaks 1" },
		{ "status", "{\"status\": \"done\"}", "has no \"protocol\": 1" },
		{ "start", "{\"protocol\": 1}", "has no \"status\" of running, done or failed" },
		{ "start", "{\"protocol\": 1, \"status\": \"running\"}", "has no \"handle\"" },
		{ "status", "{\"protocol\": 1, \"status\": \"ok\"}", "has no \"status\"" },
		{ "status", "{\"protocol\": 1, \"status\": \"done\", \"outputs\": []}",
		  "\"outputs\" is not an object" },
		{ "status", "{\"protocol\": 1, \"status\": \"failed\", \"message\": 3}",
		  "\"message\" is not a string" },
		{ "status", "{\"protocol\": 1, \"status\": \"running\", \"pollSeconds\": \"1\"}",
		  "\"pollSeconds\" is not a number" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strbuf_reset(&err);
		int rc = PARSE(bad[i][0], bad[i][1]);
		if (rc == 0 || !strstr(err.buf, bad[i][2])) {
			print_error("for %s\nexpected %s\n     got %s\n", bad[i][1], bad[i][2],
			            err.buf);
			fail();
		}
	}
	struct strbuf big = STRBUF_INIT;
	strbuf_addstr(&big, "{\"protocol\": 1, \"handle\": \"");
	for (int i = 0; i < PLUGIN_HANDLE_MAX; i++)
		strbuf_addch(&big, 'h');
	strbuf_addstr(&big, "\"}");
	strbuf_reset(&err);
	assert_true(PARSE("start", big.buf) < 0);
	assert_non_null(strstr(err.buf, "its handle is larger than 4096 bytes"));
	strbuf_release(&big);
	strbuf_release(&err);
#undef PARSE
}

static void test_call_failed_text(void **state)
{
	(void)state;
	struct strbuf s = STRBUF_INIT;
	struct plugin_call_result r = { .exit_status = 3, .err = "bad\0token\n", .err_len = 10 };
	assert_true(plugin_call_failed(&r, 2000, 100, &s));
	assert_string_equal(s.buf, "it exited with status 3: bad?token");
	strbuf_reset(&s);
	r = (struct plugin_call_result){ .timed_out = true };
	assert_true(plugin_call_failed(&r, 2000, 100, &s));
	assert_string_equal(s.buf, "it did not answer within 2 s (killed)");
	strbuf_reset(&s);
	r = (struct plugin_call_result){ .too_big = true };
	assert_true(plugin_call_failed(&r, 2000, 100, &s));
	assert_string_equal(s.buf, "it printed more than 100 bytes (killed)");
	strbuf_reset(&s);
	r = (struct plugin_call_result){ .term_signal = 9 };
	assert_true(plugin_call_failed(&r, 2000, 100, &s));
	assert_string_equal(s.buf, "it was killed by signal 9");
	strbuf_reset(&s);
	r = (struct plugin_call_result){ .out = "", .out_len = 0 };
	assert_true(plugin_call_failed(&r, 2000, 100, &s));
	assert_string_equal(s.buf, "it printed no answer");
	strbuf_reset(&s);
	r = (struct plugin_call_result){ .out = "{}", .out_len = 2 };
	assert_false(plugin_call_failed(&r, 2000, 100, &s));
	strbuf_release(&s);
}

/* ---- calls on a real loop ---- */

struct seen {
	int calls;
	char *out;
	char *why;
};

static void record(void *arg, const struct plugin_call_result *res)
{
	struct seen *s = arg;
	s->calls++;
	s->out = xmemdup0(res->out, res->out_len);
	struct strbuf why = STRBUF_INIT;
	plugin_call_failed(res, 1000, 64, &why);
	s->why = strbuf_detach(&why, NULL);
}

/* Runs script (sh) as a plugin with verb "status" and request. */
static void call_script(const char *script, const char *request, struct seen *s)
{
	char dir[] = "/tmp/test-plugin.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = xstrfmt("%s/p", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", script);
	fclose(f);
	chmod(path, 0755);
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *env[] = { "PATH=/usr/bin:/bin", "SECRET_OF_STEPPY_SHOULD_NOT_PASS=no", NULL };
	char *only_path[] = { env[0], NULL };
	struct plugin_call *c;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(plugin_call_start(&loop, path, "status", request, only_path, 1000, 64,
	                                   record, s, &c, &err),
	                 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	strbuf_release(&err);
	unlink(path);
	rmdir(dir);
	free(path);
}

static void seen_release(struct seen *s)
{
	free(s->out);
	free(s->why);
	memset(s, 0, sizeof(*s));
}

static void test_calls(void **state)
{
	(void)state;
	struct seen s = { 0 };
	/* the request arrives on stdin, the verb as $1, only the given environment */
	call_script("printf '%s|%s|%s' \"$1\" \"$(cat)\" \"${HOME:-none}\"", "{\"a\":1}", &s);
	assert_int_equal(s.calls, 1);
	assert_string_equal(s.out, "status|{\"a\":1}|none");
	assert_string_equal(s.why, "");
	seen_release(&s);
	/* a plugin that never reads its request blocks nothing */
	call_script("echo ok", "{\"long\": \"request\"}", &s);
	assert_string_equal(s.out, "ok\n");
	seen_release(&s);
	call_script("echo 'no such deploy' >&2; exit 5", "{}", &s);
	assert_string_equal(s.why, "it exited with status 5: no such deploy");
	seen_release(&s);
	call_script("sleep 30", "{}", &s);
	assert_string_equal(s.why, "it did not answer within 1 s (killed)");
	seen_release(&s);
	call_script("head -c 100000 /dev/zero", "{}", &s);
	assert_string_equal(s.why, "it printed more than 64 bytes (killed)");
	seen_release(&s);
	/* a background job that keeps stdout open does not hold the call */
	call_script("sleep 5 & echo started", "{}", &s);
	assert_string_equal(s.out, "started\n");
	seen_release(&s);
}

static void test_spawn_failure(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *env[] = { NULL };
	struct plugin_call *c;
	struct strbuf err = STRBUF_INIT;
	struct seen s = { 0 };
	assert_true(plugin_call_start(&loop, "/nonexistent/plugin", "start", "{}", env, 1000, 64,
	                              record, &s, &c, &err) < 0);
	assert_non_null(strstr(err.buf, "cannot run it"));
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(s.calls, 0); /* an error return: the callback is never called */
	assert_int_equal(uv_loop_close(&loop), 0);
	strbuf_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe_good),    cmocka_unit_test(test_describe_refused),
		cmocka_unit_test(test_validate_fields),  cmocka_unit_test(test_answers),
		cmocka_unit_test(test_call_failed_text), cmocka_unit_test(test_calls),
		cmocka_unit_test(test_spawn_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
