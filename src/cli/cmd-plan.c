/*
 * cmd-plan.c - `steppy plan`: the release as a reviewer checks it before it
 * starts: stages and steps in order, variables resolved, the account,
 * region and role of every AWS step, the source of every build.
 */
#include "cli/cli.h"

#include "plan/doc-json.h"
#include "util/timefmt.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char plan_help[] =
    "usage: steppy plan [--format text|json] [--var NAME=VALUE]... PLAN\n"
    "\n"
    "Shows what a release will do, in order, with variables substituted: each\n"
    "stage and step, the AWS account, region and role of each AWS step, the\n"
    "branch, tag or commit of each build, timeouts and retries. Nothing is run.\n"
    "\n"
    "options:\n"
    "  --format text|json  text for people (default); json prints the plan with\n"
    "                      variables substituted and defaults applied\n"
    "  --var NAME=VALUE    a value for a plan variable (repeatable)\n"
    "  --var-file NAME=FILE\n"
    "                      the value read from FILE (kept out of ps)\n"
    "  -h, --help          show this help\n"
    "\n"
    "exit status: 0 shown, 1 the plan is invalid, 2 usage error or unreadable plan\n";

struct style {
	const char *bold, *dim, *reset;
};

/* Prints text without its trailing line breaks, indenting each line after the
 * first by indent spaces so that a multi-line value stays in its column. */
static void put_indented(const char *text, int indent)
{
	size_t len = strlen(text);
	while (len && text[len - 1] == '\n')
		len--;
	for (size_t i = 0; i < len; i++) {
		putchar(text[i]);
		if (text[i] == '\n')
			printf("%*s", indent, "");
	}
}

static void print_aws(const struct plan_step *s, struct strbuf *out)
{
	char account[13];
	if (s->role_arn && role_arn_account(s->role_arn, account))
		describe_line(out, "account", "%s (assumes %s)", account, s->role_arn);
	else
		describe_line(out, "account", "that of the default credentials (no roleArn)");
	if (s->region)
		describe_line(out, "region", "%s", s->region);
	else
		describe_line(out, "region", "from AWS_REGION, AWS_DEFAULT_REGION or the profile");
}

static void print_common(const struct plan_step *s, struct strbuf *out)
{
	struct strbuf d = STRBUF_INIT;
	if (s->timeout_seconds) {
		duration_format(&d, s->timeout_seconds);
		describe_line(out, "timeout", "%s", d.buf);
		strbuf_reset(&d);
	}
	if (s->retry.max_attempts > 1) {
		duration_format(&d, s->retry.interval_seconds);
		describe_line(out, "retry", "up to %lld attempts, %s apart at first, x%g each time",
		              (long long)s->retry.max_attempts, d.buf, s->retry.backoff_rate);
	}
	strbuf_release(&d);
}

/* The variables whose values went into a `secret: true` value (shown as
 * ****), as the keys of an object, or NULL when there are none. Caller owns. */
static json_t *secret_variables(const struct plan *plan)
{
	json_t *vars = json_object();
	for (size_t i = 0; i < plan->nvariables; i++)
		json_object_set_new(vars, plan->variables[i].name,
		                    json_string(plan->variables[i].value));
	json_t *data = json_pack("{soso}", "plan", doc_to_json(plan->doc->root), "variables", vars);
	json_t *taken = execution_started_seal(data);
	json_t *names = json_incref(json_object_get(taken, "variables"));
	json_decref(taken);
	json_decref(data);
	return names;
}

static void print_text(const struct plan *plan, const char *path, const struct style *st)
{
	printf("%sRelease%s  %s\n", st->bold, st->reset, plan->name ? plan->name : "(unnamed)");
	if (plan->environment)
		printf("%sEnvironment%s  %s\n", st->bold, st->reset, plan->environment);
	printf("%sPlan%s  %s\n", st->bold, st->reset, path);
	if (plan->description) {
		put_indented(plan->description, 0);
		putchar('\n');
	}
	if (plan->nvariables) {
		json_t *secret = secret_variables(plan);
		printf("%sVariables%s\n", st->bold, st->reset);
		for (size_t i = 0; i < plan->nvariables; i++) {
			const struct plan_variable *v = &plan->variables[i];
			int indent = printf("  %s = ", v->name);
			put_indented(json_object_get(secret, v->name) ? "****" : v->value,
			             indent > 0 ? indent : 0);
			printf("  %s(%s)%s\n", st->dim, v->from_default ? "default" : "--var",
			       st->reset);
		}
		json_decref(secret);
	}
	size_t steps = 0;
	for (size_t i = 0; i < plan->nstages; i++) {
		const struct plan_stage *stage = &plan->stages[i];
		printf("\n%sStage %zu of %zu: %s%s%s\n", st->bold, i + 1, plan->nstages,
		       stage->name,
		       stage->fail_fast ? " (fail fast: the first failure cancels the rest)" : "",
		       st->reset);
		if (stage->nsteps > 1)
			printf("  %sthese %zu steps start together%s\n", st->dim, stage->nsteps,
			       st->reset);
		for (size_t j = 0; j < stage->nsteps; j++) {
			const struct plan_step *s = &stage->steps[j];
			struct strbuf out = STRBUF_INIT;
			printf("  %s%zu. %s%s  %s\n", st->bold, j + 1, s->type->name, st->reset,
			       s->name);
			s->type->describe(s->node, &out);
			if (s->type->flags & STEP_AWS)
				print_aws(s, &out);
			print_common(s, &out);
			fputs(out.buf, stdout);
			strbuf_release(&out);
			steps++;
		}
	}
	printf("\n%zu stage%s, %zu step%s. Any failed step stops the release before the next "
	       "stage.\n",
	       plan->nstages, plan->nstages == 1 ? "" : "s", steps, steps == 1 ? "" : "s");
}

/* The plan as JSON: the bound document with each step's defaults applied. */
static void print_json(const struct plan *plan)
{
	json_t *root = doc_to_json(plan->doc->root);
	plan_json_redact(root);
	json_object_del(root, "defaults");
	json_t *vars = json_object();
	json_t *secret = secret_variables(plan);
	for (size_t i = 0; i < plan->nvariables; i++)
		json_object_set_new(vars, plan->variables[i].name,
		                    json_string(json_object_get(secret, plan->variables[i].name)
		                                    ? "****"
		                                    : plan->variables[i].value));
	json_decref(secret);
	json_object_set_new(root, "variables", vars);
	json_t *stages = json_object_get(root, "stages");
	for (size_t i = 0; i < plan->nstages; i++) {
		json_t *steps = json_object_get(json_array_get(stages, i), "steps");
		for (size_t j = 0; j < plan->stages[i].nsteps; j++) {
			const struct plan_step *s = &plan->stages[i].steps[j];
			json_t *o = json_array_get(steps, j);
			if (s->timeout_seconds)
				json_object_set_new(o, "timeoutSeconds",
				                    json_integer(s->timeout_seconds));
			if (s->retry.max_attempts > 1)
				json_object_set_new(
				    o, "retry",
				    json_pack("{sI sI sf}", "maxAttempts",
				              (json_int_t)s->retry.max_attempts, "intervalSeconds",
				              (json_int_t)s->retry.interval_seconds, "backoffRate",
				              s->retry.backoff_rate));
			if (s->region)
				json_object_set_new(o, "region", json_string(s->region));
			if (s->role_arn)
				json_object_set_new(o, "roleArn", json_string(s->role_arn));
		}
	}
	json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(root);
}

int cmd_plan(int argc, char **argv, const struct cli_ctx *ctx)
{
	if (argc != 2)
		return usage_error("plan takes exactly one plan file (see steppy plan --help)");
	struct plan *plan = NULL;
	int status = cli_load_plan(argv[1], ctx->vars, ctx->nvars, &plan);
	if (status == EXIT_OK) {
		bool colour = use_colour(stdout);
		struct style st = { colour ? "\033[1m" : "", colour ? "\033[2m" : "",
			            colour ? "\033[0m" : "" };
		if (ctx->format == FORMAT_JSON)
			print_json(plan);
		else
			print_text(plan, plan->doc->name, &st);
	}
	plan_free(plan);
	return status;
}
