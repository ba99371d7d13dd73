/*
 * test-log.c - the log lines of steppy serve (src/server/log.c): one line
 * per event whatever the values hold, JSON that parses, secrets masked,
 * link tokens kept out of logged paths.
 */
#include "unit.h"

#include "server/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sends stderr (where log lines go) to a temporary file until
 * capture_end(), which returns what was written (caller frees). */
static char *capture_begin(int *saved)
{
	fflush(stderr);
	*saved = dup(2);
	FILE *f = tmpfile();
	assert_non_null(f);
	dup2(fileno(f), 2);
	return (char *)f;
}

static char *capture_end(char *handle, int saved)
{
	FILE *f = (FILE *)handle;
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	long n = ftell(f);
	assert_true(n >= 0);
	char *buf = calloc(1, (size_t)n + 1);
	rewind(f);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static void test_text_one_line_quoted(void **state)
{
	(void)state;
	log_set_format(LOG_TEXT);
	int saved;
	char *h = capture_begin(&saved);
	log_event("info", "release.started", NULL, "release", "abc123", "plan",
	          "two words \"quoted\"\nsecond line\x1b[2J", "skipped", NULL, "by", "ops", NULL);
	char *out = capture_end(h, saved);
	assert_string_equal(out,
	                    "steppy serve: release.started release=abc123 "
	                    "plan=\"two words \\\"quoted\\\"\\nsecond line\\x1b[2J\" by=ops\n");
	free(out);
}

static void test_text_message(void **state)
{
	(void)state;
	log_set_format(LOG_TEXT);
	int saved;
	char *h = capture_begin(&saved);
	log_event("error", "server.error", "cannot record events: disk full", NULL);
	char *out = capture_end(h, saved);
	assert_string_equal(out, "steppy serve: server.error: cannot record events: disk full\n");
	free(out);
}

static void test_json_parses(void **state)
{
	(void)state;
	log_set_format(LOG_JSON);
	int saved;
	char *h = capture_begin(&saved);
	log_event("warning", "request.refused", NULL, "path", "/api/v1/x", "reason",
	          "bad \xff byte\nand a newline", NULL);
	char *out = capture_end(h, saved);
	log_set_format(LOG_TEXT);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	assert_string_equal(nl + 1, ""); /* one line */
	json_error_t jerr;
	json_t *j = json_loads(out, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "event")), "request.refused");
	assert_string_equal(json_string_value(json_object_get(j, "level")), "warning");
	assert_non_null(json_object_get(j, "time"));
	assert_string_equal(json_string_value(json_object_get(j, "path")), "/api/v1/x");
	json_decref(j);
	free(out);
}

static void test_secrets_masked(void **state)
{
	(void)state;
	static const char *const secrets[] = { "hunter2-secret", "abc", NULL };
	log_set_format(LOG_TEXT);
	log_set_secrets(secrets);
	int saved;
	char *h = capture_begin(&saved);
	log_event("error", "server.error", "call failed with hunter2-secret twice: hunter2-secret",
	          "detail", "x-hunter2-secret-y", "word", "abcdef", NULL);
	char *out = capture_end(h, saved);
	log_set_secrets(NULL);
	assert_null(strstr(out, "hunter2"));
	assert_non_null(strstr(out, "call failed with **** twice: ****"));
	assert_non_null(strstr(out, "detail=x-****-y"));
	assert_non_null(strstr(out, "word=abcdef")); /* shorter than 4: not a secret */
	free(out);
}

static void test_safe_path(void **state)
{
	(void)state;
	char out[64];
	log_safe_path("/api/v1/executions/abc/steps/0/1/approve", out, sizeof(out));
	assert_string_equal(out, "/api/v1/executions/abc/steps/0/1/approve");
	log_safe_path("/approvals/0123456789abcdef", out, sizeof(out));
	assert_string_equal(out, "/approvals/...");
	log_safe_path("/p/secret-token/approve", out, sizeof(out));
	assert_string_equal(out, "/p/...");
	log_safe_path("/healthz", out, sizeof(out));
	assert_string_equal(out, "/healthz");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_one_line_quoted),
		cmocka_unit_test(test_text_message),
		cmocka_unit_test(test_json_parses),
		cmocka_unit_test(test_secrets_masked),
		cmocka_unit_test(test_safe_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
