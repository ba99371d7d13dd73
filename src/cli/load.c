/*
 * load.c - loading a plan for a command, with diagnostics shown on failure.
 */
#include "cli/cli.h"

#include "aws/s3.h"
#include "plan/limits.h"
#include "util/error.h"

#include <stdlib.h>

/* plan_load() for a plan kept in S3 (s3://BUCKET/KEY). */
static int load_s3(const char *url, const struct var_value *vals, size_t nvals,
                   struct plan **ret_plan, struct doc **ret_doc, struct diag_list *dl,
                   struct strbuf *err)
{
	char *text;
	size_t len;
	int r = s3_get_url(url, PLAN_MAX_BYTES, &text, &len, err);
	if (r < 0) {
		fprintf(stderr, "steppy: %s\n", err->buf);
		strbuf_reset(err);
		return r;
	}
	r = doc_parse(url, text, len, doc_guess_syntax(url, text, len), ret_doc, dl);
	free(text);
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
	int r = s3_is_url(path) ? load_s3(path, vals, nvals, ret_plan, &doc, &dl, &err)
	                        : plan_load(path, vals, nvals, ret_plan, &doc, &dl, &err);
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
