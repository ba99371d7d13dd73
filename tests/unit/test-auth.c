/*
 * test-auth.c - the parts of signing in that need no network: where a
 * browser may be sent after signing in (no open redirect), and base64url.
 */
#include "unit.h"

#include "server/auth.h"
#include "server/oidc.h"

#include <stdlib.h>
#include <string.h>

static void test_local_paths(void **state)
{
	(void)state;
	const char *good[] = { "/", "/approvals/0123abcd", "/#/executions/x1", "/?a=b&c=%20",
		               NULL };
	const char *bad[] = { NULL,
		              "",
		              "approvals/x",
		              "//evil.example/",
		              "/\\evil.example",
		              "https://evil.example/",
		              "javascript:alert(1)",
		              "/x\r\nSet-Cookie: a=b",
		              "/a b",
		              "/\"onload=x",
		              "/'x",
		              "/<script>",
		              NULL };
	for (int i = 0; good[i]; i++)
		assert_true(auth_local_path(good[i]));
	assert_false(auth_local_path(bad[0]));
	for (int i = 1; bad[i]; i++)
		assert_false(auth_local_path(bad[i]));
	char longer[1100];
	memset(longer, 'a', sizeof(longer) - 1);
	longer[0] = '/';
	longer[sizeof(longer) - 1] = 0;
	assert_false(auth_local_path(longer));
}

/* RFC 4648 test vectors, base64url without padding. */
static void test_b64url(void **state)
{
	(void)state;
	const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	const char *out[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		char *b = oidc_b64url((const unsigned char *)in[i], strlen(in[i]));
		assert_string_equal(b, out[i]);
		free(b);
	}
	const unsigned char bin[] = { 0xfb, 0xff, 0xbf };
	char *b = oidc_b64url(bin, sizeof(bin));
	assert_string_equal(b, "-_-_");
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_paths),
		cmocka_unit_test(test_b64url),
	};
	return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
