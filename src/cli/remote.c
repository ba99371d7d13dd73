/*
 * remote.c - the CLI as a client of `steppy serve` (see remote.h).
 */
#include "cli/remote.h"

#include "util/alloc.h"
#include "util/error.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TOKEN  4096
#define MAX_ANSWER (1024 * 1024)

/* Trims s (in place) and checks it is one token: printable ASCII, no spaces. */
static bool token_ok(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	if (!n || n > MAX_TOKEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

static int token_from_file(const char *path, char **ret_token, struct strbuf *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		strbuf_addf(err, "cannot open the token file %s: %s", path, strerror(errno));
		return SP_EIO;
	}
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		strbuf_addf(err, "the token file %s is not a regular file", path);
		close(fd);
		return SP_EINVAL;
	}
	if (sb.st_mode & 077) {
		strbuf_addf(err,
		            "the token file %s can be read by others (mode %04o); "
		            "make it private: chmod 600 %s",
		            path, (unsigned)(sb.st_mode & 07777), path);
		close(fd);
		return SP_EINVAL;
	}
	char *buf = xmalloc(MAX_TOKEN + 2);
	size_t len = 0;
	ssize_t n;
	while (len < MAX_TOKEN + 1 && (n = read(fd, buf + len, MAX_TOKEN + 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	if (len > MAX_TOKEN || memchr(buf, '\0', len) || !token_ok(buf)) {
		strbuf_addf(err,
		            "the token file %s does not hold one token (one line, printable "
		            "characters, no spaces)",
		            path);
		free(buf);
		return SP_EINVAL;
	}
	*ret_token = buf;
	return 0;
}

int remote_token_load(const char *token_file, char **ret_token, struct strbuf *err)
{
	*ret_token = NULL;
	if (token_file)
		return token_from_file(token_file, ret_token, err);
	const char *env = getenv("STEPPY_TOKEN");
	if (!env || !*env)
		return 0;
	char *t = xstrdup(env);
	if (strlen(t) > MAX_TOKEN || !token_ok(t)) {
		free(t);
		strbuf_addstr(err, "STEPPY_TOKEN does not hold one token (printable characters, "
		                   "no spaces)");
		return SP_EINVAL;
	}
	*ret_token = t;
	return 0;
}

int remote_init(struct remote *r, const char *url, char *token, struct strbuf *err)
{
	memset(r, 0, sizeof(*r));
	bool scheme = !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
	bool clean = true;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || *p == 0x7f)
			clean = false;
	if (!scheme || !clean || strlen(url) > 2000 || !strcmp(url, "http://") ||
	    !strcmp(url, "https://")) {
		strbuf_addf(err,
		            "--server takes the URL of steppy serve (http://HOST:PORT or "
		            "https://...), not \"%s\"",
		            url);
		free(token);
		return SP_EINVAL;
	}
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		n--;
	r->url = xstrndup(url, n);
	r->token = token;
	return 0;
}

bool remote_cleartext(const struct remote *r)
{
	if (!r->token || strncmp(r->url, "http://", 7) != 0)
		return false;
	const char *host = r->url + 7;
	size_t n = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":/");
	if (n == 9 && !strncasecmp(host, "localhost", 9))
		return false;
	if (n == 5 && !strncmp(host, "[::1]", 5))
		return false;
	return !(n >= 9 && !strncmp(host, "127.", 4) && strspn(host, "0123456789.") >= n);
}

void remote_release(struct remote *r)
{
	free(r->url);
	if (r->token)
		memset(r->token, 0, strlen(r->token));
	free(r->token);
	memset(r, 0, sizeof(*r));
}

/* Replaces control characters in every string value of j by '?': what a
 * server says ends up on a terminal, where escape sequences would act. */
static json_t *tame(json_t *j)
{
	if (json_is_string(j)) {
		const char *s = json_string_value(j);
		size_t n = json_string_length(j);
		bool bad = false;
		for (size_t i = 0; i < n && !bad; i++)
			bad = (unsigned char)s[i] < 0x20 || s[i] == 0x7f;
		if (bad) {
			char *copy = xmemdup0(s, n);
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)copy[i] < 0x20 || copy[i] == 0x7f)
					copy[i] = '?';
			json_string_setn(j, copy, n);
			free(copy);
		}
	} else if (json_is_array(j)) {
		for (size_t i = 0; i < json_array_size(j); i++)
			tame(json_array_get(j, i));
	} else if (json_is_object(j)) {
		/* keys are only looked up (and json_dumps escapes them) */
		const char *key;
		json_t *v;
		json_object_foreach(j, key, v)
		{
			tame(v);
		}
	}
	return j;
}

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct strbuf *sb = arg;
	return strbuf_add(sb, data, size * n) < 0 ? 0 : size * n;
}

int remote_call(const struct remote *r, const char *method, const char *path, const json_t *body,
                long *ret_status, json_t **ret_json, struct strbuf *err)
{
	*ret_status = 0;
	*ret_json = NULL;
	static bool ready;
	if (!ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		ready = true;
	}
	CURL *h = curl_easy_init();
	if (!h) {
		strbuf_addstr(err, "cannot set up an HTTP request");
		return SP_ENOMEM;
	}
	char *full = xstrfmt("%s%s", r->url, path);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	char *auth = r->token ? xstrfmt("Authorization: Bearer %s", r->token) : NULL;
	struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
	if (text)
		headers = curl_slist_append(headers, "Content-Type: application/json");
	if (auth)
		headers = curl_slist_append(headers, auth);
	struct strbuf answer;
	strbuf_init(&answer, MAX_ANSWER);
	char why[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, full);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L); /* decisions wait up to 10 s */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, why);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "steppy-cli");
	if (text) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	CURLcode rc = curl_easy_perform(h);
	int rv = 0;
	if (rc == CURLE_WRITE_ERROR && answer.len + CURL_MAX_WRITE_SIZE > MAX_ANSWER) {
		strbuf_addf(err, "the answer of %s is larger than %d bytes", r->url, MAX_ANSWER);
		rv = SP_ETOOBIG;
	} else if (rc != CURLE_OK) {
		strbuf_addf(err, "cannot reach steppy serve at %s: %s", r->url,
		            *why ? why : curl_easy_strerror(rc));
		rv = SP_EIO;
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
		if (answer.len)
			*ret_json =
			    tame(json_loadb(answer.buf, answer.len, JSON_REJECT_DUPLICATES, NULL));
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	strbuf_release(&answer);
	if (auth) {
		/* the token does not linger in freed memory */
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	free(text);
	free(full);
	return rv;
}

const char *remote_error_message(const json_t *j)
{
	return json_string_value(json_object_get(json_object_get(j, "error"), "message"));
}

const char *remote_error_code(const json_t *j)
{
	return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}
