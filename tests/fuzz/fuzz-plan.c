/*
 * fuzz-plan.c - libFuzzer target: parse, validate, bind and describe a plan.
 *
 * Every input goes through both readers (JSON with comments and YAML), then,
 * if it parses, through the validator, variable binding with defaults, the
 * plan model, every step type's describe hook, and diagnostics printing.
 * Build and run: see tests/fuzz/README.md. The test suite replays the
 * corpus in tests/fuzz/corpus/ through replay.c under ASan + UBSan.
 */
#include "cli/cli.h"
#include "plan/plan.h"
#include "plan/validate.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull(void)
{
	static FILE *f;
	if (!f)
		f = fopen("/dev/null", "w");
	return f;
}

static void run(const uint8_t *data, size_t size, enum doc_syntax syntax)
{
	struct diag_list dl = DIAG_LIST_INIT;
	struct doc *doc = NULL;
	int r = doc_parse("fuzz", (const char *)data, size, syntax, &doc, &dl);
	if (r == 0 && plan_validate(doc, false, &dl) == 0) {
		struct strbuf err = STRBUF_INIT;
		struct doc *bound = NULL;
		if (plan_bind(doc, NULL, 0, &bound, &err) == 0 &&
		    plan_validate(bound, true, &dl) == 0) {
			struct plan *plan = plan_build(bound);
			struct strbuf out = STRBUF_INIT;
			for (size_t i = 0; i < plan->nstages; i++)
				for (size_t j = 0; j < plan->stages[i].nsteps; j++)
					plan->stages[i].steps[j].type->describe(
					    plan->stages[i].steps[j].node, &out);
			strbuf_release(&out);
			plan_free(plan);
			bound = NULL;
		}
		doc_free(bound);
		strbuf_release(&err);
	}
	diag_list_sort(&dl);
	diag_print_text(devnull(), &dl, doc, false);
	diag_list_release(&dl);
	doc_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size, DOC_JSONC);
	run(data, size, DOC_YAML);
	return 0;
}
