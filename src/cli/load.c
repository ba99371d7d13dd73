/*
 * load.c - loading a plan for a command, with diagnostics shown on failure.
 */
#include "cli/cli.h"

#include "aws/s3.h"
#include "plan/limits.h"
#include "util/error.h"

#include <stdlib.h>

int cli_load_doc(const char *path, struct doc **ret_doc, struct diag_list *dl)
{
	if (!s3_is_url(path))
		return doc_load(path, ret_doc, dl);
	char *text;
	size_t len;
	struct strbuf err = STRBUF_INIT;
	int r = s3_get_url(path, PLAN_MAX_BYTES, &text, &len, &err);
	if (r < 0) {
		diag_add(dl, DIAG_ERROR, path, (struct doc_pos){ 0, 0 }, NULL, NULL, "%s", err.buf);
		strbuf_release(&err);
		return r;
	}
	strbuf_release(&err);
	r = doc_parse(path, text, len, doc_guess_syntax(path, text, len), ret_doc, dl);
	free(text);
	return r;
}

/* plan_load(), for a plan in a file or in S3. */
static int load(const char *path, const struct var_value *vals, size_t nvals,
                struct plan **ret_plan, struct doc **ret_doc, struct diag_list *dl,
                struct strbuf *err)
{
	if (!s3_is_url(path))
		return plan_load(path, vals, nvals, ret_plan, ret_doc, dl, err);
	int r = cli_load_doc(path, ret_doc, dl);
	if (r < 0)
		return r;
	return plan_from_doc(*ret_doc, vals, nvals, ret_plan, dl, err);
}

int cli_load_plan(const char *path, const struct var_value *vals, size_t nvals,
                  struct plan **ret_plan)
{
	struct diag_list dl = DIAG_LIST_INIT;
	struct strbuf err = STRBUF_INIT;
	struct doc *doc = NULL;
	int r = load(path, vals, nvals, ret_plan, &doc, &dl, &err);
	int code = EXIT_OK;
	if (r < 0) {
		diag_list_sort(&dl);
		diag_print_text(stderr, &dl, doc, use_colour(stderr));
		/* plan_bind() names an undeclared --var first, then a missing value */
		bool undeclared = false;
		for (size_t i = 0; doc && i < nvals; i++)
			undeclared |= !doc_member(doc_get(doc->root, "variables"), vals[i].name);
		const char *unbound = r == SP_EUSAGE && doc && !undeclared
		                          ? plan_unbound_variable(doc, vals, nvals)
		                          : NULL;
		if (unbound) {
			code = usage_error("variable \"%s\" has no default; give it a value with "
			                   "--var %s=VALUE",
			                   unbound, unbound);
		} else if (r == SP_EUSAGE) {
			code = usage_error("%s", err.buf);
		} else if (r == SP_EIO || r == SP_ETOOBIG) {
			code = EXIT_USAGE;
		} else {
			fprintf(stderr, "%s: %zu error%s\n", doc ? doc->name : path, dl.errors,
			        dl.errors == 1 ? "" : "s");
			code = EXIT_INVALID;
		}
	}
	doc_free(doc);
	strbuf_release(&err);
	diag_list_release(&dl);
	return code;
}
