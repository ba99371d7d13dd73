/*
 * test-plans.c - the plan fixtures in tests/plans/, as data-driven tests.
 *
 * tests/plans/valid/: every file must load, validate, bind and build with
 * no diagnostic at all.
 *
 * tests/plans/invalid/: each file lists the diagnostics it must produce, in
 * order, in comment lines at its top:
 *
 *     // expect: 6:16 /stages/0/steps/0/type: unknown step type "CodeBuld"; ...
 *     # expect: 3:1 YAML: mapping values are not allowed in this context
 *
 * as LINE:COL, then the JSON pointer and ": " when the diagnostic has one
 * ("/" for the top-level value, whose pointer is ""), then the exact
 * message. The list must match exactly: nothing missing, nothing extra.
 * The directory comes from $STEPPY_PLANS_DIR (default
 * tests/plans, relative to the repository root).
 */
#include "unit.h"

#include "plan/plan.h"
#include "plan/validate.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *plans_dir(void)
{
	const char *d = getenv("STEPPY_PLANS_DIR");
	return d ? d : "tests/plans";
}

/* Runs a file through the same pipeline as `steppy validate`. */
static void check_file(const char *path, struct diag_list *dl)
{
	struct doc *doc = NULL;
	int r = doc_load(path, &doc, dl);
	if (r == 0 && plan_validate(doc, false, dl) == 0) {
		struct doc *bound = NULL;
		struct strbuf err = STRBUF_INIT;
		if (plan_bind(doc, NULL, 0, &bound, &err) == 0)
			plan_validate(bound, true, dl);
		doc_free(bound);
		strbuf_release(&err);
	}
	doc_free(doc);
	diag_list_sort(dl);
}

/* As `steppy validate` prints it (cli/diag-print.c): the root's pointer "" shows as "/". */
static void render(struct strbuf *out, const struct diag *d)
{
	strbuf_addf(out, "%u:%u ", (unsigned)d->pos.line, (unsigned)d->pos.col);
	if (d->severity == DIAG_WARNING)
		strbuf_addstr(out, "warning: ");
	if (d->pointer)
		strbuf_addf(out, "%s: ", *d->pointer ? d->pointer : "/");
	strbuf_addstr(out, d->message);
}

static void test_invalid(void **state)
{
	const char *path = *state;
	char *text;
	size_t len;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(read_file_capped(path, 1 << 24, &text, &len, &err), 0);

	/* Expected lines: "// expect: " or "# expect: " at the start of a line. */
	struct strbuf expected = STRBUF_INIT;
	size_t nexpected = 0;
	for (char *line = text; line && *line;) {
		char *next = memchr(line, '\n', len - (size_t)(line - text));
		size_t n = next ? (size_t)(next - line) : strlen(line);
		const char *tag = NULL;
		if (!strncmp(line, "// expect: ", 11))
			tag = line + 11;
		else if (!strncmp(line, "# expect: ", 10))
			tag = line + 10;
		if (tag) {
			strbuf_add(&expected, tag, n - (size_t)(tag - line));
			strbuf_addch(&expected, '\n');
			nexpected++;
		}
		line = next ? next + 1 : NULL;
	}
	free(text);
	if (nexpected == 0)
		fail_msg("%s: no \"expect:\" lines", path);

	struct diag_list dl = DIAG_LIST_INIT;
	check_file(path, &dl);
	struct strbuf actual = STRBUF_INIT;
	for (size_t i = 0; i < dl.len; i++) {
		render(&actual, &dl.items[i]);
		strbuf_addch(&actual, '\n');
	}
	if (strcmp(expected.buf, actual.buf) != 0)
		fail_msg("%s: diagnostics differ\n--- expected\n%s--- actual\n%s", path,
		         expected.buf, actual.buf);
	diag_list_release(&dl);
	strbuf_release(&expected);
	strbuf_release(&actual);
	strbuf_release(&err);
}

static void test_valid(void **state)
{
	const char *path = *state;
	struct diag_list dl = DIAG_LIST_INIT;
	struct strbuf err = STRBUF_INIT;
	struct plan *plan = NULL;
	struct doc *doc = NULL;
	int r = plan_load(path, NULL, 0, &plan, &doc, &dl, &err);
	struct strbuf actual = STRBUF_INIT;
	for (size_t i = 0; i < dl.len; i++) {
		render(&actual, &dl.items[i]);
		strbuf_addch(&actual, '\n');
	}
	if (r != 0)
		fail_msg("%s: expected valid, got %d: %s%s", path, r, err.buf, actual.buf);
	assert_non_null(plan);
	assert_true(plan->nstages > 0);
	plan_free(plan);
	doc_free(doc);
	diag_list_release(&dl);
	strbuf_release(&err);
	strbuf_release(&actual);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the files of dir/sub, sorted; returns how many. */
static size_t list_files(const char *sub, char ***ret)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/%s", plans_dir(), sub);
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "test-plans: cannot open %s\n", dir);
		exit(1);
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = xstrfmt("%s/%s", dir, e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), by_name);
	*ret = names;
	return n;
}

int main(void)
{
	char **valid, **invalid;
	size_t nvalid = list_files("valid", &valid);
	size_t ninvalid = list_files("invalid", &invalid);
	struct CMUnitTest *tests = xcalloc(nvalid + ninvalid, sizeof(*tests));
	for (size_t i = 0; i < nvalid; i++)
		tests[i] = (struct CMUnitTest){ .name = valid[i],
			                        .test_func = test_valid,
			                        .initial_state = valid[i] };
	for (size_t i = 0; i < ninvalid; i++)
		tests[nvalid + i] = (struct CMUnitTest){ .name = invalid[i],
			                                 .test_func = test_invalid,
			                                 .initial_state = invalid[i] };
	int failed = _cmocka_run_group_tests("plans", tests, nvalid + ninvalid, NULL, NULL);
	for (size_t i = 0; i < nvalid; i++)
		free(valid[i]);
	for (size_t i = 0; i < ninvalid; i++)
		free(invalid[i]);
	free(valid);
	free(invalid);
	free(tests);
	return failed ? 1 : 0;
}
