/*
 * load.c - loading a plan for a command, with diagnostics shown on failure.
 */
#include "cli/cli.h"

#include "util/error.h"

int cli_load_plan(const char *path, const struct var_value *vals, size_t nvals,
                  struct plan **ret_plan)
{
	struct diag_list dl = DIAG_LIST_INIT;
	struct strbuf err = STRBUF_INIT;
	struct doc *doc = NULL;
	int r = plan_load(path, vals, nvals, ret_plan, &doc, &dl, &err);
	int code = EXIT_OK;
	if (r < 0) {
		diag_list_sort(&dl);
		diag_print_text(stderr, &dl, doc, use_colour(stderr));
		if (r == SP_EUSAGE) {
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
