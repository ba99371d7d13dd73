/*
 * test-aws.c - the parts of the AWS client that need no server: the shared
 * config files, endpoint and region resolution, URI encoding, XML answers,
 * S3 addresses and credentials from the environment, profiles and
 * credential_process. Calls over HTTP are tested against the fake AWS
 * endpoint (tests/aws).
 */
#include "unit.h"

#include "aws/aws-internal.h"
#include "aws/s3.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void write_file(const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/steppy-test-aws.XXXXXX");
	assert_non_null(mkdtemp(dir));
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN",
		"AWS_PROFILE",
		"AWS_REGION",
		"AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_CODEBUILD",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI",
		NULL,
	};
	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
	char path[128];
	snprintf(path, sizeof(path), "%s/config", dir);
	setenv("AWS_CONFIG_FILE", path, 1);
	snprintf(path, sizeof(path), "%s/credentials", dir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_ini(void **state)
{
	(void)state;
	write_file("config", "# comment\n[default]\nregion = eu-west-1\n"
	                     "[profile dev]\r\nRegion=us-east-2\ns3 =\n  max_concurrent = 2\n"
	                     "role_arn = arn:aws:iam::123456789012:role/x\n; done\n");
	struct ini ini = { 0 };
	char path[128];
	snprintf(path, sizeof(path), "%s/config", dir);
	assert_int_equal(ini_load(&ini, path), 0);
	assert_string_equal(ini_get(&ini, "default", "region"), "eu-west-1");
	assert_string_equal(ini_get(&ini, "profile dev", "region"), "us-east-2");
	assert_null(ini_get(&ini, "profile dev", "max_concurrent"));
	assert_string_equal(ini_get(&ini, "profile dev", "role_arn"),
	                    "arn:aws:iam::123456789012:role/x");
	assert_true(ini_has_section(&ini, "profile dev"));
	assert_false(ini_has_section(&ini, "profile nope"));
	ini_release(&ini);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(ini_load(&ini, path), 0);
	assert_int_equal(ini.len, 0);
}

static void test_uri_encode(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	aws_uri_encode(&sb, "a b/c~d_e.f-g+h=i&%", false);
	assert_string_equal(sb.buf, "a%20b%2Fc~d_e.f-g%2Bh%3Di%26%25");
	strbuf_reset(&sb);
	aws_uri_encode(&sb, "dir/plan é.json", true);
	assert_string_equal(sb.buf, "dir/plan%20%C3%A9.json");
	strbuf_release(&sb);
}

static void test_endpoints_and_region(void **state)
{
	(void)state;
	write_file("config", "[default]\nregion = eu-central-1\n");
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct aws *aws = aws_new(&loop);
	struct strbuf sb = STRBUF_INIT;
	assert_string_equal(aws_default_region(aws), "eu-central-1");
	setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
	assert_string_equal(aws_default_region(aws), "us-west-2");
	setenv("AWS_REGION", "ap-south-1", 1);
	assert_string_equal(aws_default_region(aws), "ap-south-1");

	aws_endpoint(aws, "codebuild", "eu-west-1", &sb);
	assert_string_equal(sb.buf, "https://codebuild.eu-west-1.amazonaws.com");
	strbuf_reset(&sb);
	aws_endpoint(aws, "s3", "cn-north-1", &sb);
	assert_string_equal(sb.buf, "https://s3.cn-north-1.amazonaws.com.cn");
	strbuf_reset(&sb);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9/", 1);
	setenv("AWS_ENDPOINT_URL_CODEBUILD", "http://127.0.0.1:8", 1);
	aws_endpoint(aws, "codebuild", "eu-west-1", &sb);
	assert_string_equal(sb.buf, "http://127.0.0.1:8");
	strbuf_reset(&sb);
	aws_endpoint(aws, "sts", "eu-west-1", &sb);
	assert_string_equal(sb.buf, "http://127.0.0.1:9");
	strbuf_reset(&sb);
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
	aws_endpoint(aws, "sts", "eu-west-1", &sb);
	assert_string_equal(sb.buf, "https://sts.eu-west-1.amazonaws.com");
	strbuf_release(&sb);
	aws_free(aws);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_CODEBUILD");
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
}

static void test_arn_region(void **state)
{
	(void)state;
	char buf[32];
	assert_string_equal(
	    aws_arn_region("arn:aws:sns:eu-west-1:111111111111:t", buf, sizeof(buf)), "eu-west-1");
	assert_string_equal(
	    aws_arn_region("arn:aws:lambda:us-east-2:1:function:f:live", buf, sizeof(buf)),
	    "us-east-2");
	assert_null(aws_arn_region("arn:aws:iam::111111111111:role/x", buf, sizeof(buf)));
	assert_null(aws_arn_region("orders-build", buf, sizeof(buf)));
	assert_null(aws_arn_region("arn:aws:sns:eu-west-1:1:t", buf, 4));
}

static void test_xml(void **state)
{
	(void)state;
	const char *sts = "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
	                  "<AssumeRoleResult><Credentials><AccessKeyId>ASIAX</AccessKeyId>"
	                  "<SecretAccessKey>s&amp;k</SecretAccessKey></Credentials>"
	                  "</AssumeRoleResult></AssumeRoleResponse>";
	char *v = xml_text(sts, strlen(sts), "AssumeRoleResult/Credentials/AccessKeyId");
	assert_string_equal(v, "ASIAX");
	free(v);
	v = xml_text(sts, strlen(sts), "Credentials/SecretAccessKey");
	assert_string_equal(v, "s&k");
	free(v);
	assert_null(xml_text(sts, strlen(sts), "Credentials/SessionToken"));
	assert_null(xml_text("not xml", 7, "Code"));
	/* entities are not expanded from outside */
	const char *evil = "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Error>"
	                   "<Code>&e;</Code></Error>";
	v = xml_text(evil, strlen(evil), "Code");
	assert_true(v == NULL || strstr(v, "root:") == NULL);
	free(v);
}

static void test_s3_urls(void **state)
{
	(void)state;
	char *bucket, *key;
	struct strbuf err = STRBUF_INIT;
	assert_true(s3_is_url("s3://b/k"));
	assert_false(s3_is_url("plans/s3.json"));
	assert_int_equal(s3_parse_url("s3://releases/plans/prod plan.json", &bucket, &key, &err),
	                 0);
	assert_string_equal(bucket, "releases");
	assert_string_equal(key, "plans/prod plan.json");
	struct strbuf path = STRBUF_INIT;
	s3_object_path(&path, bucket, key);
	assert_string_equal(path.buf, "/releases/plans/prod%20plan.json");
	free(bucket);
	free(key);
	assert_int_equal(s3_parse_url("s3://bucket-only", &bucket, &key, &err), -1);
	assert_non_null(strstr(err.buf, "s3://BUCKET/KEY"));
	strbuf_release(&err);
	strbuf_release(&path);
}

struct got {
	int calls;
	char *akid, *token, *error;
	int64_t expires;
};

static void got_creds(void *arg, const struct aws_creds *c, const char *error)
{
	struct got *g = arg;
	g->calls++;
	if (c) {
		g->akid = xstrdup(c->access_key_id);
		g->token = c->session_token ? xstrdup(c->session_token) : NULL;
		g->expires = c->expires_ms;
	} else
		g->error = xstrdup(error);
}

static void got_release(struct got *g)
{
	free(g->akid);
	free(g->token);
	free(g->error);
	memset(g, 0, sizeof(*g));
}

/* Resolves the default chain with a fresh client; the loop runs it. */
static void resolve(struct got *g)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct aws *aws = aws_new(&loop);
	struct aws_target t = { .service = "sts" };
	creds_get(aws, &t, got_creds, g);
	while (!g->calls && uv_run(&loop, UV_RUN_ONCE))
		;
	aws_free(aws);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	assert_int_equal(g->calls, 1);
}

static void test_credentials_chain(void **state)
{
	(void)state;
	struct got g = { 0 };
	write_file("config", "");
	write_file("credentials", "");
	resolve(&g);
	assert_non_null(strstr(g.error, "no AWS credentials"));
	got_release(&g);

	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	setenv("AWS_SESSION_TOKEN", "tok", 1);
	resolve(&g);
	assert_string_equal(g.akid, "AKIDENV");
	assert_string_equal(g.token, "tok");
	got_release(&g);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");

	write_file("credentials", "[default]\naws_access_key_id = AKIDFILE\n"
	                          "aws_secret_access_key = s\n[other]\naws_access_key_id=AKIDO\n"
	                          "aws_secret_access_key=s2\n");
	resolve(&g);
	assert_string_equal(g.akid, "AKIDFILE");
	assert_null(g.token);
	got_release(&g);
	setenv("AWS_PROFILE", "other", 1);
	resolve(&g);
	assert_string_equal(g.akid, "AKIDO");
	got_release(&g);
	setenv("AWS_PROFILE", "missing", 1);
	resolve(&g);
	assert_non_null(strstr(g.error, "profile missing (AWS_PROFILE) is not in"));
	got_release(&g);

	/* credential_process, in the config file */
	write_file("config",
	           "[profile proc]\ncredential_process = printf '{\"Version\": 1, "
	           "\"AccessKeyId\": \"AKIDPROC\", \"SecretAccessKey\": \"x\", "
	           "\"SessionToken\": \"t2\", \"Expiration\": \"2099-01-02T03:04:05Z\"}'\n"
	           "[profile bad]\ncredential_process = exit 3\n"
	           "[profile loop]\nrole_arn = arn:aws:iam::123456789012:role/r\n"
	           "source_profile = loop2\n[profile loop2]\nrole_arn = "
	           "arn:aws:iam::123456789012:role/r\nsource_profile = loop\n"
	           "[profile norole]\nrole_arn = arn:aws:iam::123456789012:role/r\n");
	setenv("AWS_PROFILE", "proc", 1);
	resolve(&g);
	assert_string_equal(g.akid, "AKIDPROC");
	assert_string_equal(g.token, "t2");
	assert_true(g.expires > 4000000000000);
	got_release(&g);
	setenv("AWS_PROFILE", "bad", 1);
	resolve(&g);
	assert_non_null(
	    strstr(g.error, "credential_process of profile bad failed (exit status 3)"));
	got_release(&g);
	setenv("AWS_PROFILE", "loop", 1);
	resolve(&g);
	assert_non_null(strstr(g.error, "chain longer than"));
	got_release(&g);
	setenv("AWS_PROFILE", "norole", 1);
	resolve(&g);
	assert_non_null(strstr(g.error, "role_arn needs source_profile or credential_source"));
	got_release(&g);
	unsetenv("AWS_PROFILE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ini),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_endpoints_and_region),
		cmocka_unit_test(test_arn_region),
		cmocka_unit_test(test_xml),
		cmocka_unit_test(test_s3_urls),
		cmocka_unit_test(test_credentials_chain),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
