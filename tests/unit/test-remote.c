/*
 * test-remote.c - the CLI as a client of steppy serve (cli/remote.h): where
 * the API token comes from and which token files are refused, which server
 * URLs are taken, when a token would cross the network in clear, and what
 * an unreachable server's error says. No traffic leaves 127.0.0.1.
 */
#include "unit.h"

#include "cli/remote.h"
#include "util/error.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/steppy-test-remote-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to dir/name with mode; returns the path (static). */
static const char *token_file(const char *name, const char *text, mode_t mode)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void test_token_from_a_private_file(void **state)
{
	(void)state;
	struct strbuf err = STRBUF_INIT;
	char *token = NULL;
	/* one line; the newline an editor adds is not part of the token */
	assert_int_equal(remote_token_load(token_file("t", "stp_abc123\n", 0600), &token, &err), 0);
	assert_string_equal(token, "stp_abc123");
	free(token);
	assert_int_equal(remote_token_load(token_file("t", "stp_abc123", 0400), &token, &err), 0);
	assert_string_equal(token, "stp_abc123");
	free(token);
	strbuf_release(&err);
}

static void test_token_files_others_can_read_are_refused(void **state)
{
	(void)state;
	static const mode_t modes[] = { 0644, 0640, 0604, 0660, 0606 };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct strbuf err = STRBUF_INIT;
		char *token = (char *)"untouched";
		const char *path = token_file("t", "stp_abc123\n", modes[i]);
		assert_int_equal(remote_token_load(path, &token, &err), SP_EINVAL);
		assert_null(token);
		assert_non_null(strstr(err.buf, "can be read by others"));
		assert_non_null(strstr(err.buf, "chmod 600"));
		strbuf_release(&err);
	}
}

static void test_bad_token_files(void **state)
{
	(void)state;
	struct strbuf err = STRBUF_INIT;
	char *token = NULL;
	char missing[128];
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	assert_int_equal(remote_token_load(missing, &token, &err), SP_EIO);
	assert_non_null(strstr(err.buf, "cannot open the token file"));
	strbuf_reset(&err);
	assert_int_equal(remote_token_load(dir, &token, &err), SP_EINVAL); /* a directory */
	assert_non_null(strstr(err.buf, "not a regular file"));
	strbuf_reset(&err);
	/* empty, two words, two lines (a header would be injected), a control character */
	const char *bad[] = { "", "\n", "stp a", "stp_a\nX-Evil: 1\n", "stp_\001" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(remote_token_load(token_file("t", bad[i], 0600), &token, &err),
		                 SP_EINVAL);
		assert_non_null(strstr(err.buf, "does not hold one token"));
		strbuf_reset(&err);
	}
	/* larger than 4 KiB */
	char *big = malloc(5000);
	memset(big, 'a', 4999);
	big[4999] = '\0';
	assert_int_equal(remote_token_load(token_file("t", big, 0600), &token, &err), SP_EINVAL);
	free(big);
	strbuf_release(&err);
}

static void test_token_from_the_environment(void **state)
{
	(void)state;
	struct strbuf err = STRBUF_INIT;
	char *token = NULL;
	unsetenv("STEPPY_TOKEN");
	assert_int_equal(remote_token_load(NULL, &token, &err), 0);
	assert_null(token); /* none: the request goes without one */
	setenv("STEPPY_TOKEN", "stp_env", 1);
	assert_int_equal(remote_token_load(NULL, &token, &err), 0);
	assert_string_equal(token, "stp_env");
	free(token);
	/* a file wins over the environment */
	assert_int_equal(remote_token_load(token_file("t", "stp_file", 0600), &token, &err), 0);
	assert_string_equal(token, "stp_file");
	free(token);
	setenv("STEPPY_TOKEN", "stp\r\nX-Evil: 1", 1);
	assert_int_equal(remote_token_load(NULL, &token, &err), SP_EINVAL);
	assert_non_null(strstr(err.buf, "STEPPY_TOKEN"));
	unsetenv("STEPPY_TOKEN");
	strbuf_release(&err);
}

static void test_server_urls(void **state)
{
	(void)state;
	struct strbuf err = STRBUF_INIT;
	struct remote r;
	assert_int_equal(remote_init(&r, "http://127.0.0.1:8080//", NULL, &err), 0);
	assert_string_equal(r.url, "http://127.0.0.1:8080"); /* paths are appended to it */
	remote_release(&r);
	assert_int_equal(remote_init(&r, "https://steppy.example.com/base", NULL, &err), 0);
	assert_string_equal(r.url, "https://steppy.example.com/base");
	remote_release(&r);
	const char *bad[] = { "ftp://x",     "127.0.0.1:8080", "http://",         "http://h/?q=1",
		              "http://h/#f", "http://h /x",    "http://h\r\nX: 1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(remote_init(&r, bad[i], strdup("stp_x"), &err), SP_EINVAL);
		assert_non_null(strstr(err.buf, "--server takes the URL"));
		strbuf_reset(&err);
	}
	strbuf_release(&err);
}

static void test_cleartext(void **state)
{
	(void)state;
	struct {
		const char *url;
		bool token, clear;
	} cases[] = {
		{ "http://192.0.2.1:8080", true, true },    { "http://steppy.example", true, true },
		{ "http://127.0.0.1:8080", true, false },   { "http://127.1.2.3", true, false },
		{ "http://localhost:1", true, false },      { "http://[::1]:8080", true, false },
		{ "https://192.0.2.1", true, false },       { "http://192.0.2.1", false, false },
		{ "http://127.0.0.1.example", true, true },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct remote r;
		struct strbuf err = STRBUF_INIT;
		assert_int_equal(
		    remote_init(&r, cases[i].url, cases[i].token ? strdup("stp_x") : NULL, &err),
		    0);
		if (remote_cleartext(&r) != cases[i].clear)
			fail_msg("%s: cleartext should be %d", cases[i].url, cases[i].clear);
		remote_release(&r);
		strbuf_release(&err);
	}
}

static void test_unreachable_server_is_named(void **state)
{
	(void)state;
	/* port 1 of loopback: nothing listens there */
	struct strbuf err = STRBUF_INIT;
	struct remote r;
	assert_int_equal(remote_init(&r, "http://127.0.0.1:1", strdup("stp_x"), &err), 0);
	long status = -1;
	json_t *j = NULL;
	assert_int_equal(remote_call(&r, "GET", "/api/v1/executions", NULL, &status, &j, &err),
	                 SP_EIO);
	assert_int_equal(status, 0);
	assert_null(j);
	assert_non_null(strstr(err.buf, "cannot reach steppy serve at http://127.0.0.1:1"));
	assert_null(strstr(err.buf, "stp_x")); /* the token never shows */
	remote_release(&r);
	strbuf_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_token_from_a_private_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_files_others_can_read_are_refused, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_bad_token_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_from_the_environment, setup, teardown),
		cmocka_unit_test(test_server_urls),
		cmocka_unit_test(test_cleartext),
		cmocka_unit_test(test_unreachable_server_is_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
