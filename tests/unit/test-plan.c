/*
 * test-plan.c - variable binding, defaults, the plan model, and step types
 * registered by plugins.
 */
#include "unit.h"

#include "plan/plan.h"
#include "plan/step-type.h"
#include "plan/validate.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char plan_text[] =
    "{\n"
    "  \"name\": \"r\",\n"
    "  \"variables\": { \"V\": {}, \"B\": { \"default\": \"main\" } },\n"
    "  \"defaults\": { \"region\": \"eu-west-1\", \"timeoutSeconds\": 60,\n"
    "                \"roleArn\": \"arn:aws:iam::123456789012:role/x\",\n"
    "                \"retry\": { \"maxAttempts\": 4 } },\n"
    "  \"stages\": [ { \"name\": \"s\", \"failFast\": true, \"steps\": [\n"
    "    { \"type\": \"CodeBuild\", \"name\": \"cb\", \"codeBuildName\": \"p-${var.V}\",\n"
    "      \"sourceVersion\": \"${var.B}\", \"region\": \"us-east-1\",\n"
    "      \"retry\": { \"intervalSeconds\": 5 } },\n"
    "    { \"type\": \"Human\", \"name\": \"h\", \"message\": \"$${var.V} is ${var.V}\" },\n"
    "    { \"type\": \"Exec\", \"name\": \"e\", \"command\": [\"true\"], \"timeoutSeconds\": 5 }\n"
    "  ] } ]\n"
    "}\n";

static struct plan *load(const struct var_value *vals, size_t n, int expect, const char *err_part)
{
	char path[] = "/tmp/steppy-test-plan-XXXXXX.jsonc";
	int fd = mkstemps(path, 6);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, plan_text, sizeof(plan_text) - 1),
	                 (ssize_t)sizeof(plan_text) - 1);
	close(fd);
	struct diag_list dl = DIAG_LIST_INIT;
	struct strbuf err = STRBUF_INIT;
	struct plan *plan = NULL;
	struct doc *doc = NULL;
	int r = plan_load(path, vals, n, &plan, &doc, &dl, &err);
	unlink(path);
	if (r != expect)
		fail_msg("plan_load returned %d (%s%s)", r, err.buf,
		         dl.len ? dl.items[0].message : "");
	if (err_part && !strstr(err.buf, err_part))
		fail_msg("error \"%s\" lacks \"%s\"", err.buf, err_part);
	doc_free(doc);
	diag_list_release(&dl);
	strbuf_release(&err);
	return plan;
}

static void test_bind_and_defaults(void **state)
{
	(void)state;
	const struct var_value vals[] = { { "V", "one" }, { "V", "two" } }; /* the last wins */
	struct plan *plan = load(vals, 2, 0, NULL);
	assert_string_equal(plan->name, "r");
	assert_int_equal(plan->nstages, 1);
	assert_true(plan->stages[0].fail_fast);
	const struct plan_step *cb = &plan->stages[0].steps[0];
	assert_string_equal(cb->type->name, "CodeBuild");
	assert_string_equal(step_string(cb->node, "codeBuildName"), "p-two");
	assert_string_equal(step_string(cb->node, "sourceVersion"), "main");
	assert_string_equal(cb->region, "us-east-1");                          /* the step's own */
	assert_string_equal(cb->role_arn, "arn:aws:iam::123456789012:role/x"); /* default */
	assert_int_equal(cb->timeout_seconds, 60);
	/* A step's retry replaces the default one; unset fields take the built-in defaults. */
	assert_int_equal(cb->retry.max_attempts, 3);
	assert_int_equal(cb->retry.interval_seconds, 5);
	assert_true(cb->retry.backoff_rate == 2.0);

	const struct plan_step *h = &plan->stages[0].steps[1];
	assert_string_equal(step_string(h->node, "message"), "${var.V} is two");
	assert_null(h->region);                     /* not an AWS step */
	assert_int_equal(h->retry.max_attempts, 1); /* not retryable */

	const struct plan_step *e = &plan->stages[0].steps[2];
	assert_int_equal(e->timeout_seconds, 5);
	assert_int_equal(e->retry.max_attempts, 4); /* from defaults */
	assert_int_equal(e->retry.interval_seconds, 10);

	assert_int_equal(plan->nvariables, 2);
	assert_string_equal(plan->variables[0].name, "V");
	assert_string_equal(plan->variables[0].value, "two");
	assert_false(plan->variables[0].from_default);
	assert_string_equal(plan->variables[1].value, "main");
	assert_true(plan->variables[1].from_default);
	char account[13];
	assert_string_equal(role_arn_account(cb->role_arn, account), "123456789012");
	assert_null(role_arn_account("arn:aws:iam::12:role/x", account));
	plan_free(plan);
}

static void test_bind_errors(void **state)
{
	(void)state;
	assert_null(load(NULL, 0, SP_EUSAGE, "variable \"V\" has no default"));
	const struct var_value typo[] = { { "VV", "x" } };
	assert_null(load(typo, 1, SP_EUSAGE, "no variable \"VV\"; did you mean \"V\"?"));
}

static void validate_plugin(struct vctx *v, const struct doc_node *step)
{
	const char *job = step_string(step, "job");
	if (job && strchr(job, ' '))
		v_error(v, step->pos, NULL, "Jenkins job names have no spaces");
}

static void describe_plugin(const struct doc_node *step, struct strbuf *out)
{
	describe_line(out, "job", "%s", step_string(step, "job"));
}

static const struct field_spec plugin_fields[] = {
	{ .name = "job", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
	{ .name = NULL },
};

static const struct step_type plugin = {
	.name = "Jenkins",
	.summary = "test plugin",
	.flags = STEP_RETRYABLE,
	.fields = plugin_fields,
	.validate = validate_plugin,
	.describe = describe_plugin,
};

static void test_plugin_step_type(void **state)
{
	(void)state;
	assert_int_equal(step_type_register(&plugin), 0);
	assert_int_equal(step_type_register(&plugin), SP_EINVAL);
	assert_ptr_equal(step_type_find("Jenkins"), &plugin);

	const char *text =
	    "{\"stages\": [{\"name\": \"s\", \"steps\": [\n"
	    "  {\"type\": \"Jenkins\", \"name\": \"j\", \"job\": \"a b\", \"jbo\": 1},\n"
	    "  {\"type\": \"Jenkin\", \"name\": \"k\"}]}]}";
	struct diag_list dl = DIAG_LIST_INIT;
	struct doc *doc = NULL;
	assert_int_equal(doc_parse("p.json", text, strlen(text), DOC_JSONC, &doc, &dl), 0);
	assert_int_equal(plan_validate(doc, false, &dl), SP_EINVAL);
	diag_list_sort(&dl);
	assert_int_equal(dl.len, 3);
	assert_string_equal(dl.items[0].message, "Jenkins job names have no spaces");
	assert_string_equal(dl.items[1].message,
	                    "unknown field \"jbo\" in a Jenkins step; did you mean \"job\"?");
	assert_string_equal(dl.items[2].message,
	                    "unknown step type \"Jenkin\"; did you mean \"Jenkins\"?");
	diag_list_release(&dl);
	doc_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bind_and_defaults),
		cmocka_unit_test(test_bind_errors),
		cmocka_unit_test(test_plugin_step_type),
	};
	return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
