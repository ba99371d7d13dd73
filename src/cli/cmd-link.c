/*
 * cmd-link.c - `steppy link`: ask a server for a new approval link of a
 * waiting Human step (POST /api/v1/executions/ID/steps/S/T/link), when the
 * first one reached nobody. The old link stops working; the new one goes to
 * the step's channels again and is printed.
 */
#include "cli/cli.h"

#include "util/alloc.h"
#include "util/fileio.h"
#include "util/strbuf.h"
#include "util/suggest.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ANSWER (4u << 20)

const char link_help[] =
    "usage: steppy link --server URL [--token-file FILE] EXECUTION STEP\n"
    "\n"
    "Asks the steppy server that runs a release for a new approval link of its\n"
    "waiting Human step STEP (its name, or STAGE/STEP when two stages have a step\n"
    "of that name). The old link stops working; the new one goes to the step's\n"
    "channels again, is recorded in the history (without the link) and is printed.\n"
    "Needs a token with the approver role: --token-file, or $STEPPY_TOKEN.\n"
    "\n"
    "options:\n"
    "  --server URL        the server (https://steppy.example.com)\n"
    "  --token-file FILE   a file holding the API token (first line)\n"
    "  -h, --help          show this help\n"
    "\n"
    "exit status: 0 a new link was issued, 1 the server refused, 2 usage or\n"
    "             connection error\n";

struct answer {
	struct strbuf body;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	if (a->body.len + size * n > MAX_ANSWER)
		return 0;
	strbuf_add(&a->body, data, size * n);
	return size * n;
}

/* One request; returns the HTTP status (0: no answer, with why in err) and the JSON body. */
static long call(const char *method, const char *url, const char *token, json_t **ret,
                 struct strbuf *err)
{
	CURL *e = curl_easy_init();
	struct answer a = { STRBUF_INIT };
	struct curl_slist *h = NULL;
	char *auth = token ? xstrfmt("Authorization: Bearer %s", token) : NULL;
	if (auth)
		h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "steppy");
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{}");
	}
	long status = 0;
	CURLcode rc = curl_easy_perform(e);
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	else
		strbuf_addf(err, "%s", *errbuf ? errbuf : curl_easy_strerror(rc));
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	*ret = status ? json_loadb(a.body.buf ? a.body.buf : "", a.body.len, 0, NULL) : NULL;
	strbuf_release(&a.body);
	return status;
}

/* The error message of an answer, or a generic one. */
static const char *answer_error(json_t *j)
{
	const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	return m ? m : "the server gave no reason";
}

/* The token: --token-file's first line, else $STEPPY_TOKEN, else NULL. */
static char *read_token(const char *file, int *status)
{
	if (!file) {
		const char *t = getenv("STEPPY_TOKEN");
		return t && *t ? xstrdup(t) : NULL;
	}
	char *data;
	size_t len;
	struct strbuf err = STRBUF_INIT;
	if (read_file_capped(file, 4096, &data, &len, &err) < 0) {
		*status = usage_error("--token-file: %s", err.buf);
		strbuf_release(&err);
		return NULL;
	}
	strbuf_release(&err);
	data[strcspn(data, "\r\n")] = '\0';
	return data;
}

/* Finds STEP (or STAGE/STEP) in an execution's report; false after printing why. */
static bool find_step(json_t *report, const char *want, long *ret_stage, long *ret_step)
{
	const char *slash = strchr(want, '/');
	size_t nstage = slash ? (size_t)(slash - want) : 0;
	const char *step_name = slash ? slash + 1 : want;
	json_t *stages = json_object_get(report, "stages"), *stage;
	size_t i, found = 0, nnames = 0;
	const char **names = xcalloc(1024 + 1, sizeof(*names));
	json_array_foreach(stages, i, stage)
	{
		const char *sname = json_string_value(json_object_get(stage, "name"));
		json_t *step;
		size_t k;
		json_array_foreach(json_object_get(stage, "steps"), k, step)
		{
			const char *name = json_string_value(json_object_get(step, "name"));
			if (!name || !sname)
				continue;
			if (nnames < 1024)
				names[nnames++] = name;
			if (strcmp(name, step_name) != 0 ||
			    (slash && (strlen(sname) != nstage || strncmp(sname, want, nstage))))
				continue;
			if (!found++) {
				*ret_stage = (long)i;
				*ret_step = (long)k;
			}
		}
	}
	if (found > 1)
		fprintf(stderr, "steppy: %zu steps are called \"%s\": say which as STAGE/STEP\n",
		        found, step_name);
	else if (!found) {
		const char *guess = suggest_closest(step_name, names);
		fprintf(stderr, "steppy: the release has no step \"%s\"%s%s%s\n", want,
		        guess ? "; did you mean \"" : "", guess ? guess : "", guess ? "\"?" : "");
	}
	free(names);
	return found == 1;
}

int cmd_link(int argc, char **argv, const struct cli_ctx *ctx)
{
	const char *server = ctx->server, *token_file = ctx->token_file;
	int status = EXIT_OK;
	if (!server)
		return usage_error("link needs --server URL (see steppy link --help)");
	if (strncmp(server, "http://", 7) != 0 && strncmp(server, "https://", 8) != 0)
		return usage_error("--server takes an http:// or https:// URL, not \"%s\"", server);
	if (argc != 3)
		return usage_error("link needs EXECUTION and STEP (see steppy link --help)");
	const char *id = argv[1], *want = argv[2];
	if (strpbrk(id, "/?#% ") || !*id)
		return usage_error("\"%s\" is not an execution id", id);
	char *token = read_token(token_file, &status);
	if (status != EXIT_OK)
		return status;
	struct strbuf base = STRBUF_INIT, err = STRBUF_INIT;
	strbuf_addstr(&base, server);
	while (base.len && base.buf[base.len - 1] == '/')
		base.buf[--base.len] = '\0';
	char *url = xstrfmt("%s/api/v1/executions/%s", base.buf, id);
	json_t *report = NULL, *ans = NULL;
	long stage = 0, step = 0;
	long code = call("GET", url, token, &report, &err);
	free(url);
	if (!code) {
		fprintf(stderr, "steppy: cannot reach %s: %s\n", base.buf, err.buf);
		status = EXIT_USAGE;
	} else if (code != 200) {
		fprintf(stderr, "steppy: %s: HTTP %ld: %s\n", id, code, answer_error(report));
		status = code == 404 ? EXIT_INVALID : EXIT_USAGE;
	} else if (!find_step(report, want, &stage, &step)) {
		status = EXIT_INVALID;
	} else {
		url = xstrfmt("%s/api/v1/executions/%s/steps/%ld/%ld/link", base.buf, id, stage,
		              step);
		code = call("POST", url, token, &ans, &err);
		free(url);
		if (code == 201) {
			printf("%s\n", json_string_value(json_object_get(ans, "url")));
			json_t *to = json_object_get(ans, "channels"), *ch;
			size_t i;
			fprintf(stderr, "steppy: new approval link for %s, step \"%s\"; sent to ",
			        id, want);
			json_array_foreach(to, i, ch)
			    fprintf(stderr, "%s%s", i ? ", " : "", json_string_value(ch));
			fputs("; the old link no longer works\n", stderr);
		} else if (!code) {
			fprintf(stderr, "steppy: cannot reach %s: %s\n", base.buf, err.buf);
			status = EXIT_USAGE;
		} else {
			fprintf(stderr, "steppy: HTTP %ld: %s\n", code, answer_error(ans));
			status =
			    code == 409 || code == 403 || code == 404 ? EXIT_INVALID : EXIT_USAGE;
		}
	}
	json_decref(report);
	json_decref(ans);
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	strbuf_release(&base);
	strbuf_release(&err);
	return status;
}
