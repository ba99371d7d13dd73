/*
 * creds.c - AWS credentials as the SDKs find them, cached per role.
 *
 * The default chain, first match wins:
 *   1. the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *      AWS_SESSION_TOKEN);
 *   2. the profile (AWS_PROFILE, else "default") of ~/.aws/credentials and
 *      ~/.aws/config: role_arn with source_profile or credential_source
 *      (assumed through STS), static keys, or credential_process;
 *   3. container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
 *      _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE));
 *   4. EC2 instance metadata with IMDSv2 (unless AWS_EC2_METADATA_DISABLED).
 * A step's roleArn is assumed with the default credentials. Credentials
 * are reused until five minutes before they expire; every caller waiting
 * for the same credentials shares one fetch.
 */
#include "aws/aws-internal.h"

#include "util/alloc.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#define REFRESH_BEFORE_MS  (5 * 60 * 1000)
#define FAILURE_TTL_MS     5000
#define MAX_CHAIN          5
#define PROCESS_TIMEOUT_MS 30000

struct creds_wait {
	struct cred_entry *entry;
	creds_fn fn;
	void *arg;
	struct creds_wait *next;
};

struct cred_entry {
	struct aws *aws;
	char *key; /* "" for the default chain, else role\x1fexternal id\x1fsession */
	char *role_arn, *external_id, *session_name, *region;
	struct aws_creds creds;
	bool have, fetching;
	char *error;
	int64_t error_until;
	struct creds_wait *waiters;
	struct cred_entry *next;
};

void aws_creds_release(struct aws_creds *c)
{
	free(c->access_key_id);
	free(c->secret_access_key);
	free(c->session_token);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

void aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
	dst->access_key_id = xstrdup(src->access_key_id);
	dst->secret_access_key = xstrdup(src->secret_access_key);
	dst->session_token = src->session_token ? xstrdup(src->session_token) : NULL;
	dst->expires_ms = src->expires_ms;
	dst->source = xstrdup(src->source ? src->source : "");
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* ---- a fetch: continuation passing, one small context per step ---------- */

typedef void (*fetch_fn)(void *arg, struct aws_creds *creds /* owned or NULL */, const char *error);

static void fetch_default(struct aws *aws, fetch_fn fn, void *arg);
static void fetch_profile(struct aws *aws, const char *name, int depth, fetch_fn fn, void *arg);
static void assume_role(struct aws *aws, const struct aws_creds *base, const char *role_arn,
                        const char *external_id, const char *session_name, const char *region,
                        long duration_s, fetch_fn fn, void *arg);

static struct aws_creds *creds_new(const char *akid, const char *secret, const char *token,
                                   int64_t expires_ms, const char *source)
{
	struct aws_creds *c = xcalloc(1, sizeof(*c));
	c->access_key_id = xstrdup(akid);
	c->secret_access_key = xstrdup(secret);
	c->session_token = token && *token ? xstrdup(token) : NULL;
	c->expires_ms = expires_ms;
	c->source = xstrdup(source);
	return c;
}

static void creds_free(struct aws_creds *c)
{
	if (c) {
		aws_creds_release(c);
		free(c);
	}
}

static struct aws_creds *from_env(void)
{
	const char *id = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
	if (!id || !secret)
		return NULL;
	return creds_new(id, secret, env("AWS_SESSION_TOKEN"), 0, "the environment");
}

/* Credentials from a JSON object as container, IMDS and credential_process
 * give them. */
static struct aws_creds *from_json(const json_t *o, const char *token_key, const char *source,
                                   struct strbuf *err)
{
	const char *id = json_string_value(json_object_get(o, "AccessKeyId"));
	const char *secret = json_string_value(json_object_get(o, "SecretAccessKey"));
	const char *token = json_string_value(json_object_get(o, token_key));
	const char *exp = json_string_value(json_object_get(o, "Expiration"));
	int64_t exp_ms = 0;
	const char *reason;
	if (!id || !secret || !*id || !*secret) {
		strbuf_addf(err, "%s gave no AccessKeyId and SecretAccessKey", source);
		return NULL;
	}
	if (exp && rfc3339_parse(exp, &exp_ms, &reason) < 0) {
		strbuf_addf(err, "%s gave an unreadable Expiration: %s", source, reason);
		return NULL;
	}
	return creds_new(id, secret, token, exp_ms, source);
}

/* ---- credential_process -------------------------------------------------- */

static struct aws_creds *from_process(const char *command, const char *profile, struct strbuf *err)
{
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0) {
		strbuf_addf(err, "credential_process: %s", strerror(errno));
		return NULL;
	}
	pid_t pid = fork();
	if (pid < 0) {
		strbuf_addf(err, "credential_process: %s", strerror(errno));
		close(out[0]);
		close(out[1]);
		return NULL;
	}
	if (pid == 0) {
		dup2(out[1], 1);
		closefrom(3); /* nothing of steppy's (store, sockets) for the command */
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	struct strbuf text;
	strbuf_init(&text, 1u << 20);
	int64_t deadline = wall_clock_ms() + PROCESS_TIMEOUT_MS;
	char buf[4096];
	bool timed_out = false;
	for (;;) {
		int64_t left = deadline - wall_clock_ms();
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		ssize_t n = read(out[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || strbuf_add(&text, buf, (size_t)n) < 0)
			break;
	}
	close(out[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	struct aws_creds *c = NULL;
	char source[160];
	snprintf(source, sizeof(source), "credential_process of profile %s", profile);
	if (timed_out)
		strbuf_addf(err, "%s took longer than %d s", source, PROCESS_TIMEOUT_MS / 1000);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		strbuf_addf(err, "%s failed (exit status %d)", source,
		            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	else {
		json_error_t je;
		json_t *o = json_loadb(text.buf, text.len, 0, &je);
		if (!json_is_object(o))
			strbuf_addf(err, "%s did not print a JSON object", source);
		else if (json_integer_value(json_object_get(o, "Version")) != 1)
			strbuf_addf(err, "%s must print \"Version\": 1", source);
		else
			c = from_json(o, "SessionToken", source, err);
		json_decref(o);
	}
	strbuf_release(&text);
	return c;
}

/* ---- container and instance metadata ------------------------------------- */

struct meta_fetch {
	struct aws *aws;
	fetch_fn fn;
	void *arg;
	int stage; /* IMDS: 0 token, 1 role name, 2 credentials */
	char *base, *token, *auth;
};

static void meta_free(struct meta_fetch *m)
{
	free(m->base);
	free(m->token);
	free(m->auth);
	free(m);
}

static void meta_request(struct meta_fetch *m, const char *url, const char *method,
                         struct curl_slist *headers, http_done_fn done)
{
	CURL *easy = curl_easy_init();
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	http_send(m->aws->http, easy, headers, done, m);
}

static void container_done(void *arg, const struct http_response *res)
{
	struct meta_fetch *m = arg;
	struct strbuf err = STRBUF_INIT;
	struct aws_creds *c = NULL;
	if (res->error || res->status != 200) {
		strbuf_addf(&err, "container credentials from %s: %s", m->base,
		            res->error ? res->error : "unexpected HTTP status");
		if (!res->error)
			strbuf_addf(&err, " %ld", res->status);
	} else {
		json_t *o = json_loadb(res->body, res->len, 0, NULL);
		c = from_json(o, "Token", "container credentials", &err);
		json_decref(o);
	}
	m->fn(m->arg, c, c ? NULL : err.buf);
	strbuf_release(&err);
	meta_free(m);
}

static bool fetch_container(struct aws *aws, fetch_fn fn, void *arg)
{
	const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	if (!rel && !full)
		return false;
	struct meta_fetch *m = xcalloc(1, sizeof(*m));
	*m = (struct meta_fetch){ .aws = aws, .fn = fn, .arg = arg };
	m->base = rel ? xstrfmt("http://169.254.170.2%s", rel) : xstrdup(full);
	const char *token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	const char *token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	char *file_token = NULL;
	if (token_file) {
		FILE *f = fopen(token_file, "re");
		char buf[4096];
		if (f && fgets(buf, sizeof(buf), f)) {
			buf[strcspn(buf, "\r\n")] = '\0';
			file_token = xstrdup(buf);
		}
		if (f)
			fclose(f);
	}
	struct curl_slist *headers = NULL;
	if (file_token || token) {
		char *h = xstrfmt("Authorization: %s", file_token ? file_token : token);
		headers = curl_slist_append(headers, h);
		free(h);
	}
	free(file_token);
	meta_request(m, m->base, "GET", headers, container_done);
	return true;
}

static void imds_step(void *arg, const struct http_response *res);

static void imds_next(struct meta_fetch *m, const char *path, const char *method)
{
	char *url = xstrfmt("%s%s", m->base, path);
	struct curl_slist *headers = NULL;
	char *h = m->token ? xstrfmt("X-aws-ec2-metadata-token: %s", m->token)
	                   : xstrdup("X-aws-ec2-metadata-token-ttl-seconds: 21600");
	headers = curl_slist_append(headers, h);
	free(h);
	meta_request(m, url, method, headers, imds_step);
	free(url);
}

static void imds_step(void *arg, const struct http_response *res)
{
	struct meta_fetch *m = arg;
	if (res->error || res->status != 200) {
		struct strbuf err = STRBUF_INIT;
		strbuf_addf(&err, "instance metadata at %s: ", m->base);
		if (res->error)
			strbuf_addstr(&err, res->error);
		else
			strbuf_addf(&err, "HTTP status %ld", res->status);
		m->fn(m->arg, NULL, err.buf);
		strbuf_release(&err);
		meta_free(m);
		return;
	}
	switch (m->stage++) {
	case 0:
		m->token = xstrndup(res->body, strcspn(res->body, "\r\n"));
		imds_next(m, "/latest/meta-data/iam/security-credentials/", "GET");
		return;
	case 1: {
		char *role = xstrndup(res->body, strcspn(res->body, "\r\n"));
		char *path = xstrfmt("/latest/meta-data/iam/security-credentials/%s", role);
		imds_next(m, path, "GET");
		free(path);
		free(role);
		return;
	}
	default: {
		struct strbuf err = STRBUF_INIT;
		json_t *o = json_loadb(res->body, res->len, 0, NULL);
		struct aws_creds *c = from_json(o, "Token", "instance metadata", &err);
		json_decref(o);
		m->fn(m->arg, c, c ? NULL : err.buf);
		strbuf_release(&err);
		meta_free(m);
	}
	}
}

static bool fetch_imds(struct aws *aws, fetch_fn fn, void *arg)
{
	const char *disabled = env("AWS_EC2_METADATA_DISABLED");
	if (disabled && !strcasecmp(disabled, "true"))
		return false;
	struct meta_fetch *m = xcalloc(1, sizeof(*m));
	*m = (struct meta_fetch){ .aws = aws, .fn = fn, .arg = arg };
	const char *ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	m->base = xstrdup(ep ? ep : "http://169.254.169.254");
	size_t n = strlen(m->base);
	if (n && m->base[n - 1] == '/')
		m->base[n - 1] = '\0';
	imds_next(m, "/latest/api/token", "PUT");
	return true;
}

/* ---- STS AssumeRole ------------------------------------------------------- */

struct assume {
	fetch_fn fn;
	void *arg;
	char *role_arn;
};

static void assume_done(void *arg, const struct aws_result *res)
{
	struct assume *as = arg;
	struct strbuf err = STRBUF_INIT;
	struct aws_creds *c = NULL;
	if (res->error_code) {
		strbuf_addf(&err, "cannot assume role %s: ", as->role_arn);
		aws_result_error(res, &err);
	} else {
		const char *base = "AssumeRoleResult/Credentials/";
		char path[96];
		char *v[4];
		const char *names[4] = { "AccessKeyId", "SecretAccessKey", "SessionToken",
			                 "Expiration" };
		for (int i = 0; i < 4; i++) {
			snprintf(path, sizeof(path), "%s%s", base, names[i]);
			v[i] = xml_text(res->body, res->len, path);
		}
		int64_t exp = 0;
		const char *reason;
		char *source = xstrfmt("role %s", as->role_arn);
		if (!v[0] || !v[1] || !v[2] || !v[3] || rfc3339_parse(v[3], &exp, &reason) < 0)
			strbuf_addf(&err, "cannot assume role %s: STS gave an unreadable answer",
			            as->role_arn);
		else
			c = creds_new(v[0], v[1], v[2], exp, source);
		free(source);
		for (int i = 0; i < 4; i++)
			free(v[i]);
	}
	as->fn(as->arg, c, c ? NULL : err.buf);
	strbuf_release(&err);
	free(as->role_arn);
	free(as);
}

static void assume_role(struct aws *aws, const struct aws_creds *base, const char *role_arn,
                        const char *external_id, const char *session_name, const char *region,
                        long duration_s, fetch_fn fn, void *arg)
{
	struct assume *as = xcalloc(1, sizeof(*as));
	*as = (struct assume){ .fn = fn, .arg = arg, .role_arn = xstrdup(role_arn) };
	json_t *params = json_pack("{ssss}", "RoleArn", role_arn, "RoleSessionName",
	                           session_name ? session_name : "steppy");
	if (external_id)
		json_object_set_new(params, "ExternalId", json_string(external_id));
	if (duration_s > 0) {
		char d[24];
		snprintf(d, sizeof(d), "%ld", duration_s);
		json_object_set_new(params, "DurationSeconds", json_string(d));
	}
	struct strbuf body = STRBUF_INIT;
	strbuf_addstr(&body, "Action=AssumeRole&Version=2011-06-15");
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v)
	{
		strbuf_addf(&body, "&%s=", k);
		aws_uri_encode(&body, json_string_value(v), false);
	}
	json_decref(params);
	struct aws_target t = { .service = "sts", .region = region };
	struct aws_request req = { .method = "POST",
		                   .path = "/",
		                   .content_type = "application/x-www-form-urlencoded; "
		                                   "charset=utf-8",
		                   .body = body.buf,
		                   .len = body.len };
	aws_send_with(aws, &t, &req, base, assume_done, as);
	strbuf_release(&body);
}

/* ---- profiles ------------------------------------------------------------- */

struct profile_fetch {
	struct aws *aws;
	fetch_fn fn;
	void *arg;
	char *name, *role_arn, *external_id, *session, *region;
	long duration_s;
};

static void profile_fetch_free(struct profile_fetch *p)
{
	free(p->name);
	free(p->role_arn);
	free(p->external_id);
	free(p->session);
	free(p->region);
	free(p);
}

static void profile_assumed(void *arg, struct aws_creds *c, const char *error)
{
	struct profile_fetch *p = arg;
	p->fn(p->arg, c, error);
	profile_fetch_free(p);
}

static void profile_source_ready(void *arg, struct aws_creds *base, const char *error)
{
	struct profile_fetch *p = arg;
	if (!base) {
		struct strbuf err = STRBUF_INIT;
		strbuf_addf(&err, "profile %s: %s", p->name, error);
		p->fn(p->arg, NULL, err.buf);
		strbuf_release(&err);
		profile_fetch_free(p);
		return;
	}
	assume_role(p->aws, base, p->role_arn, p->external_id, p->session, p->region, p->duration_s,
	            profile_assumed, p);
	creds_free(base);
}

static struct aws_creds *static_profile_keys(struct aws *aws, const char *name)
{
	const char *id = aws_profile_value(aws, name, "aws_access_key_id");
	const char *secret = aws_profile_value(aws, name, "aws_secret_access_key");
	if (!id || !secret || !*id || !*secret)
		return NULL;
	char *source = xstrfmt("profile %s", name);
	struct aws_creds *c =
	    creds_new(id, secret, aws_profile_value(aws, name, "aws_session_token"), 0, source);
	free(source);
	return c;
}

static void fetch_profile(struct aws *aws, const char *name, int depth, fetch_fn fn, void *arg)
{
	struct strbuf err = STRBUF_INIT;
	const char *role_arn = aws_profile_value(aws, name, "role_arn");
	if (role_arn && *role_arn) {
		if (depth >= MAX_CHAIN) {
			strbuf_addf(&err,
			            "profile %s: source_profile chain longer than %d (a cycle?)",
			            name, MAX_CHAIN);
			fn(arg, NULL, err.buf);
			strbuf_release(&err);
			return;
		}
		struct profile_fetch *p = xcalloc(1, sizeof(*p));
		*p = (struct profile_fetch){ .aws = aws, .fn = fn, .arg = arg };
		p->name = xstrdup(name);
		p->role_arn = xstrdup(role_arn);
		const char *v = aws_profile_value(aws, name, "external_id");
		p->external_id = v ? xstrdup(v) : NULL;
		v = aws_profile_value(aws, name, "role_session_name");
		p->session = xstrdup(v ? v : "steppy");
		v = aws_profile_value(aws, name, "region");
		p->region = v ? xstrdup(v) : NULL;
		v = aws_profile_value(aws, name, "duration_seconds");
		p->duration_s = v ? strtol(v, NULL, 10) : 0;
		const char *src = aws_profile_value(aws, name, "source_profile");
		const char *cs = aws_profile_value(aws, name, "credential_source");
		if (src && !strcmp(src, name)) {
			struct aws_creds *c = static_profile_keys(aws, name);
			profile_source_ready(p, c,
			                     "it names itself as source_profile but has no keys");
		} else if (src) {
			if (!aws_profile_exists(aws, src)) {
				char *e = xstrfmt("source_profile %s does not exist", src);
				profile_source_ready(p, NULL, e);
				free(e);
			} else
				fetch_profile(aws, src, depth + 1, profile_source_ready, p);
		} else if (cs && !strcmp(cs, "Environment")) {
			profile_source_ready(p, from_env(),
			                     "credential_source Environment: AWS_ACCESS_KEY_ID and "
			                     "AWS_SECRET_ACCESS_KEY are not set");
		} else if (cs && !strcmp(cs, "EcsContainer")) {
			if (!fetch_container(aws, profile_source_ready, p))
				profile_source_ready(p, NULL,
				                     "credential_source EcsContainer: no container "
				                     "credentials URI is set");
		} else if (cs && !strcmp(cs, "Ec2InstanceMetadata")) {
			if (!fetch_imds(aws, profile_source_ready, p))
				profile_source_ready(
				    p, NULL,
				    "credential_source Ec2InstanceMetadata: instance "
				    "metadata is disabled");
		} else {
			profile_source_ready(p, NULL,
			                     cs ? "credential_source must be Environment, "
			                          "EcsContainer or Ec2InstanceMetadata"
			                        : "role_arn needs source_profile or "
			                          "credential_source");
		}
		return;
	}
	struct aws_creds *c = static_profile_keys(aws, name);
	if (c) {
		fn(arg, c, NULL);
		return;
	}
	const char *process = aws_profile_value(aws, name, "credential_process");
	if (process && *process) {
		c = from_process(process, name, &err);
		fn(arg, c, c ? NULL : err.buf);
		strbuf_release(&err);
		return;
	}
	strbuf_addf(&err,
	            "profile %s has no credentials (aws_access_key_id, role_arn or "
	            "credential_process)",
	            name);
	fn(arg, NULL, err.buf);
	strbuf_release(&err);
}

static void fetch_default(struct aws *aws, fetch_fn fn, void *arg)
{
	struct aws_creds *c = from_env();
	if (c) {
		fn(arg, c, NULL);
		return;
	}
	if (aws->profile_explicit || aws_profile_exists(aws, aws->profile)) {
		if (!aws_profile_exists(aws, aws->profile)) {
			char *e = xstrfmt("profile %s (AWS_PROFILE) is not in the AWS config or "
			                  "credentials file",
			                  aws->profile);
			fn(arg, NULL, e);
			free(e);
			return;
		}
		fetch_profile(aws, aws->profile, 0, fn, arg);
		return;
	}
	if (fetch_container(aws, fn, arg) || fetch_imds(aws, fn, arg))
		return;
	fn(arg, NULL,
	   "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
	   "with ~/.aws/credentials or ~/.aws/config, or run where container or instance "
	   "credentials are available");
}

/* ---- the cache ------------------------------------------------------------ */

static void entry_settle(struct cred_entry *e, struct aws_creds *c, const char *error)
{
	e->fetching = false;
	free(e->error);
	e->error = NULL;
	if (c) {
		aws_creds_release(&e->creds);
		e->creds = *c;
		free(c);
		e->have = true;
	} else {
		e->have = false;
		e->error = xstrdup(error ? error : "no credentials");
		e->error_until = wall_clock_ms() + FAILURE_TTL_MS;
	}
	while (e->waiters) {
		struct creds_wait *w = e->waiters;
		e->waiters = w->next;
		w->fn(w->arg, e->have ? &e->creds : NULL, e->have ? NULL : e->error);
		free(w);
	}
}

static void entry_fetched(void *arg, struct aws_creds *c, const char *error)
{
	entry_settle(arg, c, error);
}

static void role_base_ready(void *arg, const struct aws_creds *base, const char *error)
{
	struct cred_entry *e = arg;
	if (!base) {
		entry_settle(e, NULL, error);
		return;
	}
	assume_role(e->aws, base, e->role_arn, e->external_id, e->session_name, e->region, 0,
	            entry_fetched, e);
}

static bool fresh(const struct cred_entry *e, int64_t now)
{
	return e->have && (!e->creds.expires_ms || e->creds.expires_ms - now > REFRESH_BEFORE_MS);
}

static char *entry_key(const struct aws_target *t)
{
	if (!t->role_arn)
		return xstrdup("");
	return xstrfmt("%s\x1f%s\x1f%s", t->role_arn, t->external_id ? t->external_id : "",
	               t->session_name ? t->session_name : "steppy");
}

static struct cred_entry *entry_find(struct aws *aws, const struct aws_target *t, bool create)
{
	char *key = entry_key(t);
	for (struct cred_entry *e = aws->creds; e; e = e->next)
		if (!strcmp(e->key, key)) {
			free(key);
			return e;
		}
	if (!create) {
		free(key);
		return NULL;
	}
	struct cred_entry *e = xcalloc(1, sizeof(*e));
	e->aws = aws;
	e->key = key;
	if (t->role_arn) {
		e->role_arn = xstrdup(t->role_arn);
		e->external_id = t->external_id ? xstrdup(t->external_id) : NULL;
		e->session_name = xstrdup(t->session_name ? t->session_name : "steppy");
		e->region = t->region ? xstrdup(t->region) : NULL;
	}
	e->next = aws->creds;
	aws->creds = e;
	return e;
}

struct creds_wait *creds_get(struct aws *aws, const struct aws_target *t, creds_fn fn, void *arg)
{
	struct cred_entry *e = entry_find(aws, t, true);
	int64_t now = wall_clock_ms();
	if (fresh(e, now)) {
		fn(arg, &e->creds, NULL);
		return NULL;
	}
	if (!e->fetching && e->error && now < e->error_until) {
		fn(arg, NULL, e->error);
		return NULL;
	}
	if (!e->fetching) {
		e->fetching = true;
		if (!e->role_arn) {
			fetch_default(aws, entry_fetched, e);
		} else {
			struct aws_target base = { .service = "sts", .region = t->region };
			creds_get(aws, &base, role_base_ready, e);
		}
		if (!e->fetching) { /* settled at once */
			fn(arg, e->have ? &e->creds : NULL, e->have ? NULL : e->error);
			return NULL;
		}
	}
	struct creds_wait *w = xcalloc(1, sizeof(*w));
	*w = (struct creds_wait){ .entry = e, .fn = fn, .arg = arg, .next = e->waiters };
	e->waiters = w;
	return w;
}

void creds_wait_cancel(struct creds_wait *w)
{
	for (struct creds_wait **p = &w->entry->waiters; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			free(w);
			return;
		}
}

void creds_forget(struct aws *aws, const struct aws_target *t)
{
	struct cred_entry *e = entry_find(aws, t, false);
	if (e && !e->fetching)
		e->have = false;
}

void creds_release_all(struct aws *aws)
{
	while (aws->creds) {
		struct cred_entry *e = aws->creds;
		aws->creds = e->next;
		while (e->waiters) {
			struct creds_wait *w = e->waiters;
			e->waiters = w->next;
			free(w);
		}
		aws_creds_release(&e->creds);
		free(e->key);
		free(e->role_arn);
		free(e->external_id);
		free(e->session_name);
		free(e->region);
		free(e->error);
		free(e);
	}
}
