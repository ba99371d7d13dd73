/*
 * plan-fixture.h - a plan from JSON text for unit tests, shared by the
 * engine, approval and runtime tests (one copy instead of three).
 */
#ifndef STEPPY_TESTS_PLAN_FIXTURE_H
#define STEPPY_TESTS_PLAN_FIXTURE_H

#include "unit.h"

#include "plan/plan.h"
#include "plan/validate.h"
#include "util/strbuf.h"

#include <string.h>

/*
 * Parses, validates and binds text (JSON, without variables) and builds
 * its plan; the test fails with the first diagnostic on an invalid one.
 * The caller frees the plan with plan_free().
 */
static __attribute__((unused)) struct plan *test_plan(const char *text)
{
	struct diag_list dl = DIAG_LIST_INIT;
	struct doc *doc = NULL, *bound = NULL;
	struct strbuf err = STRBUF_INIT;
	if (doc_parse("t.json", text, strlen(text), DOC_JSONC, &doc, &dl) < 0 ||
	    plan_validate(doc, false, &dl) < 0 || plan_bind(doc, NULL, 0, &bound, &err) < 0)
		fail_msg("bad test plan: %s%s", dl.len ? dl.items[0].message : "", err.buf);
	doc_free(doc);
	diag_list_release(&dl);
	strbuf_release(&err);
	return plan_build(bound);
}

#endif
