/*
 * cmd-validate.c - `steppy validate`: check plans, report every problem.
 */
#include "cli/cli.h"

#include "core/policy.h"
#include "notify/notify.h"
#include "plan/validate.h"
#include "server/config.h"
#include "util/error.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char validate_help[] =
    "usage: steppy validate [--format text|json] [--var NAME=VALUE]... [--config FILE] PLAN...\n"
    "\n"
    "Checks release plans (JSON with comments, or YAML; - reads standard input)\n"
    "and reports every problem at once, each with file:line:column, the JSON\n"
    "pointer of the offending value and, for misspellings, what was probably meant.\n"
    "\n"
    "Values given with --var, and declared defaults, are substituted and checked\n"
    "too when every variable has a value.\n"
    "\n"
    "With --config, the configuration of `steppy serve` is checked too, every\n"
    "channel a Human or Notify step names must be one of its channels, and its\n"
    "exec setting must allow the plan's Exec steps (when every variable has a value).\n"
    "\n"
    "options:\n"
    "  --format text|json  text for people (default), json for CI systems\n"
    "  --var NAME=VALUE    a value for a plan variable (repeatable)\n"
    "  --var-file NAME=FILE\n"
    "                      the value read from FILE (kept out of ps)\n"
    "  --config FILE       the server's configuration (steppy serve --config FILE)\n"
    "  -q, --quiet         print nothing for valid plans\n"
    "  -h, --help          show this help\n"
    "\n"
    "exit status: 0 every plan is valid, 1 a plan is invalid,\n"
    "             2 usage error or a plan could not be read\n";

struct plan_result {
	size_t stages, steps;
	bool valid;
};

/* Validates one file; adds its diagnostics to dl. Returns the exit code for it. */
static int validate_one(const char *path, const struct var_value *vals, size_t nvals,
                        const struct serve_config *cfg, const char *cfg_name, struct diag_list *dl,
                        struct doc **ret_doc, struct plan_result *res)
{
	struct doc *doc = NULL;
	*res = (struct plan_result){ 0 };
	int r = cli_load_doc(path, &doc, dl);
	*ret_doc = doc;
	if (r == SP_EIO || r == SP_ETOOBIG)
		return EXIT_USAGE;
	if (r < 0)
		return EXIT_INVALID;
	r = plan_validate(doc, false, dl);
	/* the server's channels: a name it does not have would lose an approval link */
	if (cfg && channels_check_plan(cfg->channel_list, cfg->nchannels, doc, cfg_name, dl))
		r = SP_EINVAL;
	if (r < 0)
		return EXIT_INVALID;

	/* Check substituted values when every variable has one. */
	struct strbuf err = STRBUF_INIT;
	struct doc *bound = NULL;
	int code = EXIT_OK;
	r = plan_bind(doc, vals, nvals, &bound, &err);
	if (r == 0) {
		if (plan_validate(bound, true, dl) < 0) {
			code = EXIT_INVALID;
		} else if (cfg) {
			/* the server's exec policy: a plan it would refuse is not valid there */
			struct plan *plan = plan_build(bound);
			bound = NULL; /* the plan owns it */
			if (exec_policy_check_plan(&cfg->exec, plan, false, dl) < 0)
				code = EXIT_INVALID;
			plan_free(plan);
		}
	} else if (nvals > 0) {
		/* --var names a variable the plan lacks, or leaves one without a value */
		const char *unbound = plan_unbound_variable(doc, vals, nvals);
		if (unbound && !strstr(err.buf, "declares no variable"))
			strbuf_addf(&err, "; give it a value with --var %s=VALUE", unbound);
		diag_add(dl, DIAG_ERROR, doc->name, (struct doc_pos){ 0, 0 }, NULL, NULL, "%s",
		         err.buf);
		code = EXIT_USAGE;
	} /* else a variable without default: its uses are checked when values are given */
	strbuf_release(&err);
	doc_free(bound);
	if (code != EXIT_OK)
		return code;

	const struct doc_node *stages = doc_get(doc->root, "stages");
	res->valid = true;
	res->stages = stages->u.array.len;
	for (size_t i = 0; i < stages->u.array.len; i++)
		res->steps += doc_get(stages->u.array.items[i], "steps")->u.array.len;
	return EXIT_OK;
}

const struct option validate_options[] = {
	{ "quiet", no_argument, NULL, 'q' },
	{ NULL, 0, NULL, 0 },
};

/* The configuration of --config, or the defaults. Returns EXIT_OK, or prints
 * its diagnostics and returns EXIT_USAGE (cfg released). */
static int load_config(const char *path, struct serve_config *cfg)
{
	if (!path) {
		serve_config_defaults(cfg);
		return EXIT_OK;
	}
	struct diag_list dl = DIAG_LIST_INIT;
	int code = EXIT_OK;
	if (serve_config_load(path, cfg, &dl) < 0) {
		diag_list_sort(&dl);
		diag_print_text(stderr, &dl, cfg->doc, use_colour(stderr));
		fprintf(stderr, "%s: invalid configuration\n", path);
		serve_config_release(cfg);
		code = EXIT_USAGE;
	}
	diag_list_release(&dl);
	return code;
}

/* The --format json entry of one file. */
static json_t *file_json(const char *name, int code, const struct diag_list *dl,
                         const struct plan_result *res)
{
	json_t *o = json_object();
	json_object_set_new(o, "file", json_string(name));
	json_object_set_new(o, "valid", json_boolean(code == EXIT_OK));
	json_object_set_new(o, "errorCount", json_integer((json_int_t)dl->errors));
	if (code == EXIT_OK) {
		json_object_set_new(o, "stages", json_integer((json_int_t)res->stages));
		json_object_set_new(o, "steps", json_integer((json_int_t)res->steps));
	}
	json_object_set_new(o, "diagnostics", diag_to_json(dl));
	return o;
}

/* The text report of one file: diagnostics and the error count on stderr,
 * "valid (S stages, T steps)" on stdout unless quiet. */
static void file_text(const char *name, int code, const struct diag_list *dl, const struct doc *doc,
                      const struct plan_result *res, bool quiet)
{
	diag_print_text(stderr, dl, doc, use_colour(stderr));
	if (code == EXIT_OK && !quiet)
		printf("%s: valid (%zu stage%s, %zu step%s)\n", name, res->stages,
		       res->stages == 1 ? "" : "s", res->steps, res->steps == 1 ? "" : "s");
	else if (code != EXIT_OK)
		fprintf(stderr, "%s: %zu error%s\n", name, dl->errors, dl->errors == 1 ? "" : "s");
}

/* The --format json document of the whole run. */
static void print_summary_json(json_t *files, int status, size_t total_errors)
{
	json_t *out = json_object();
	json_object_set_new(out, "valid", json_boolean(status == EXIT_OK));
	json_object_set_new(out, "errorCount", json_integer((json_int_t)total_errors));
	json_object_set_new(out, "files", files);
	json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(out);
}

int cmd_validate(int argc, char **argv, const struct cli_ctx *ctx)
{
	bool quiet = false;
	for (size_t i = 0; i < ctx->nopts; i++)
		quiet |= ctx->opts[i].id == 'q';
	if (argc < 2)
		return usage_error(
		    "validate needs at least one plan file (see steppy validate --help)");
	struct serve_config cfg;
	int status = load_config(ctx->config, &cfg);
	if (status != EXIT_OK)
		return status;
	json_t *files = json_array();
	size_t total_errors = 0;
	for (int i = 1; i < argc; i++) {
		struct diag_list dl = DIAG_LIST_INIT;
		struct doc *doc = NULL;
		struct plan_result res;
		int code = validate_one(argv[i], ctx->vars, ctx->nvars, ctx->config ? &cfg : NULL,
		                        ctx->config, &dl, &doc, &res);
		diag_list_sort(&dl);
		total_errors += dl.errors;
		if (code > status)
			status = code;
		const char *name = doc ? doc->name : (!strcmp(argv[i], "-") ? "<stdin>" : argv[i]);
		if (ctx->format == FORMAT_JSON)
			json_array_append_new(files, file_json(name, code, &dl, &res));
		else
			file_text(name, code, &dl, doc, &res, quiet);
		diag_list_release(&dl);
		doc_free(doc);
	}
	if (ctx->format == FORMAT_JSON)
		print_summary_json(files, status, total_errors);
	else
		json_decref(files);
	serve_config_release(&cfg);
	return status;
}
