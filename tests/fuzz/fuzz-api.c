/*
 * fuzz-api.c - libFuzzer target: the HTTP API's request handling, without a
 * socket.
 *
 * An input is a request in a plain text form:
 *
 *     METHOD PATH[?QUERY]
 *     Name: value            (any number of header lines)
 *                            (an empty line)
 *     body...
 *
 * It goes through server_handle(), the same checks and routes a connection's
 * request gets (authentication, the checks made on headers alone, body
 * limits, every handler), on a server that is not started: a temporary
 * store holding one finished release (id "fz00000001", two stages of Wait
 * steps, run once at start), two tokens ("Bearer stp_fuzz_admin" has every
 * role, "Bearer stp_fuzz_viewer" only viewer) and no loop thread, so a
 * submission or retry is answered 503 and nothing more is ever run. Every JSON answer must parse.
 * Build and run: see tests/fuzz/README.md; the test suite replays
 * tests/fuzz/corpus-api/ through replay.c.
 */
#include "server/server-internal.h"

#include "cli/cli.h"
#include "runtime/runtime.h"
#include "util/alloc.h"

#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 32
#define MAX_QUERY   16

static struct server *srv;
static struct serve_config cfg;
static struct api_token tokens[2];
static char dir[] = "/tmp/steppy-fuzz-api.XXXXXX";
static char store_path[64];

static void cleanup(void)
{
	server_free(srv);
	const char *suffixes[] = { "", "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char path[96];
		snprintf(path, sizeof(path), "%s%s", store_path, suffixes[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* Runs one small release to its end into the store, for the handlers that
 * read a release (the report, events, streams, decisions refused). */
static void seed_store(void)
{
	char plan_path[96];
	snprintf(plan_path, sizeof(plan_path), "%s/plan.json", dir);
	FILE *f = fopen(plan_path, "w");
	if (!f)
		abort();
	fputs("{\"name\": \"fuzz\", \"environmentName\": \"test\", \"stages\": ["
	      "{\"name\": \"one\", \"steps\": [{\"name\": \"a\", \"type\": \"Wait\", "
	      "\"seconds\": 0}, {\"name\": \"b\", \"type\": \"Wait\", \"seconds\": 0}]},"
	      "{\"name\": \"two\", \"steps\": [{\"name\": \"c\", \"type\": \"Wait\", "
	      "\"seconds\": 0}]}]}\n",
	      f);
	fclose(f);
	struct store *st;
	struct runtime *rt;
	struct plan *plan;
	struct strbuf err = STRBUF_INIT;
	struct runtime_options opts = { 0 };
	const char *id;
	if (store_open(store_path, &st, &err) < 0 || runtime_new(st, &opts, &rt, &err) < 0 ||
	    cli_load_plan(plan_path, NULL, 0, &plan) != 0 ||
	    runtime_submit_as(rt, plan, plan_path, "fuzz", "fz00000001", &id, &err) < 0) {
		fprintf(stderr, "fuzz-api: cannot seed the store: %s\n", err.buf);
		abort();
	}
	runtime_run(rt);
	runtime_free(rt);
	store_close(st);
	strbuf_release(&err);
	unlink(plan_path);
}

static void setup(void)
{
	if (!mkdtemp(dir))
		abort();
	snprintf(store_path, sizeof(store_path), "%s/steppy.db", dir);
	seed_store();
	serve_config_defaults(&cfg);
	tokens[0].name = "admin";
	SHA256((const unsigned char *)"stp_fuzz_admin", 14, tokens[0].sha256);
	tokens[0].roles = ROLE_VIEWER | ROLE_OPERATOR | ROLE_APPROVER;
	tokens[1].name = "viewer";
	SHA256((const unsigned char *)"stp_fuzz_viewer", 15, tokens[1].sha256);
	tokens[1].roles = ROLE_VIEWER;
	cfg.tokens = tokens;
	cfg.ntokens = 2;
	cfg.max_body_bytes = 65536;
	srv = server_new(&cfg, store_path);
	snprintf(srv->url, sizeof(srv->url), "http://127.0.0.1:8080");
	srv->closing = true; /* no loop thread: jobs for it are refused at once */
	atexit(cleanup);
}

/* Decodes %XX in place, as libmicrohttpd does for paths and query values. */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++) {
		unsigned hi, lo;
		if (s[0] == '%' && sscanf(s + 1, "%1x%1x", &hi, &lo) == 2) {
			*o++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!srv)
		setup();
	char *text = xmemdup0(data, size);
	char *body = strstr(text, "\n\n");
	size_t body_len = 0;
	if (body) {
		*body = '\0';
		body += 2;
		body_len = size - (size_t)(body - text);
	}
	/* the request line */
	char *line = text, *next = strchr(line, '\n');
	if (next)
		*next++ = '\0';
	char *sp = strchr(line, ' ');
	if (!sp || memchr(data, '\0', body ? (size_t)(body - text) : size)) {
		free(text);
		return 0;
	}
	*sp = '\0';
	char *path = sp + 1, *query = strchr(path, '?');
	if (query)
		*query++ = '\0';
	unescape(path);
	const char *q[2 * MAX_QUERY + 1] = { 0 };
	size_t nq = 0;
	for (char *tok = query ? strtok(query, "&") : NULL; tok && nq < 2 * MAX_QUERY;
	     tok = strtok(NULL, "&")) {
		char *eq = strchr(tok, '=');
		if (eq)
			*eq++ = '\0';
		unescape(tok);
		if (eq)
			unescape(eq);
		q[nq++] = tok;
		q[nq++] = eq ? eq : "";
	}
	/* header lines */
	const char *h[2 * MAX_HEADERS + 1] = { 0 };
	size_t nh = 0;
	for (line = next; line && *line && nh < 2 * MAX_HEADERS; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		h[nh++] = line;
		h[nh++] = colon + 1 + strspn(colon + 1, " ");
	}
	struct request_input in = { .method = text,
		                    .path = path,
		                    .headers = h,
		                    .query = q,
		                    .body = body,
		                    .len = body_len };
	unsigned status;
	char *answer;
	size_t len;
	server_handle(srv, &in, &status, &answer, &len);
	if (getenv("FUZZ_API_VERBOSE")) /* what each input got, for reading a corpus */
		printf("%s %s -> %u %.160s\n", in.method, in.path, status, answer);
	if (status < 100 || status > 599)
		abort();
	if (len && answer[0] == '{') {
		json_error_t je;
		json_t *j = json_loadb(answer, len, 0, &je);
		if (!j) {
			fprintf(stderr, "fuzz-api: the answer is not JSON: %s\n%s\n", je.text,
			        answer);
			abort();
		}
		json_decref(j);
	}
	free(answer);
	free(text);
	return 0;
}
