/*
 * inbox.c - release plans dropped into a directory, or put under an S3
 * prefix, start releases, as the original design's "input" file did.
 *
 * Every pollSeconds the server looks at the plan files (.json, .jsonc,
 * .yaml, .yml; not hidden, not results). A local file is taken once it has
 * not changed for a whole poll (so half-written files wait); an S3 object
 * at once (objects appear whole). The release id is derived from the file's
 * path, size and modification time (an object's address and ETag), and the
 * release is created under that id: a file starts exactly one release, also
 * when the server restarts in between (the second creation fails on the
 * existing id). A changed file starts a new release.
 *
 * The outcome goes next to the file, in NAME.result.json: the release id
 * and status when it starts, the final status when it ends, or the plan's
 * errors when it is invalid.
 *
 * S3 calls are made synchronously on the loop thread (a list per poll, a
 * read and a write per new object): a slow S3 holds the loop that long.
 */
#include "server/inbox.h"

#include "aws/s3.h"
#include "plan/limits.h"
#include "plan/plan.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct seen {
	char *name;   /* file name, or S3 key */
	char *etag;   /* S3 */
	char *status; /* last status written to its result (S3) */
	int64_t mtime_ns;
	off_t size;
	bool taken; /* submitted, or judged invalid */
	char id[11];
	struct seen *next;
};

struct inbox {
	struct runtime *rt;
	struct store *st;      /* for lookups from the loop thread */
	char *dir;             /* a directory, or NULL */
	char *bucket, *prefix; /* an S3 prefix, or NULL */
	uv_timer_t timer;
	struct seen *seen;
};

static bool plan_name(const char *name)
{
	if (name[0] == '.' || strstr(name, ".result.json"))
		return false;
	const char *dot = strrchr(name, '.');
	return dot && (!strcmp(dot, ".json") || !strcmp(dot, ".jsonc") || !strcmp(dot, ".yaml") ||
	               !strcmp(dot, ".yml"));
}

/* The release id of a version of a file: 10 characters of its hash, in the
 * alphabet of generated ids. */
static void derive_id(const char *path, const struct stat *sb, char out[11])
{
	static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
	char key[PATH_MAX + 64];
	int n =
	    snprintf(key, sizeof(key), "inbox:%s:%lld.%09ld:%lld", path,
	             (long long)sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec, (long long)sb->st_size);
	unsigned char h[SHA256_DIGEST_LENGTH];
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(key))
		n = (int)sizeof(key) - 1; /* cut: still the same for the same file */
	SHA256((const unsigned char *)key, (size_t)n, h);
	for (int i = 0; i < 10; i++)
		out[i] = alphabet[h[i] & 31];
	out[10] = '\0';
}

static void write_result(const char *path, json_t *doc);

/* Writes the result of a plan file of the inbox: a file, or an S3 object. */
static void put_result(struct inbox *in, struct seen *s, const char *path, json_t *doc)
{
	if (!in->bucket) {
		write_result(path, doc);
		return;
	}
	const char *status = json_string_value(json_object_get(doc, "status"));
	if (s && status && s->status && !strcmp(s->status, status)) {
		json_decref(doc);
		return; /* written already */
	}
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	char *key = xstrfmt("%s.result.json", s->name);
	struct strbuf err = STRBUF_INIT;
	if (s3_put(in->bucket, key, "application/json", text, strlen(text), &err) < 0)
		fprintf(stderr, "steppy serve: inbox: cannot write s3://%s/%s: %s\n", in->bucket,
		        key, err.buf);
	else if (s && status) {
		free(s->status);
		s->status = xstrdup(status);
	}
	strbuf_release(&err);
	free(key);
	free(text);
	json_decref(doc);
}

static void write_result(const char *path, json_t *doc)
{
	char *target = xstrfmt("%s.result.json", path);
	char *tmp = xstrfmt("%s.result.json.tmp", path);
	if (json_dump_file(doc, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0)
		rename(tmp, target);
	else
		fprintf(stderr, "steppy serve: cannot write %s: %s\n", target, strerror(errno));
	free(target);
	free(tmp);
	json_decref(doc);
}

/* The status recorded in a result file, or NULL (caller frees). */
static char *result_status(const char *path)
{
	char *target = xstrfmt("%s.result.json", path);
	json_t *doc = json_load_file(target, 0, NULL);
	free(target);
	const char *s = json_string_value(json_object_get(doc, "status"));
	char *out = s ? xstrdup(s) : NULL;
	json_decref(doc);
	return out;
}

static void take(struct inbox *in, struct seen *s, const char *path)
{
	s->taken = true;
	struct exec_row row;
	if (store_get(in->st, s->id, &row, NULL) == 0) {
		/* Started before (by this server before a restart): record how it
		 * ended if the result file does not say so yet. */
		char *old = in->bucket ? NULL : result_status(path);
		if (!old || strcmp(old, row.status) != 0)
			put_result(in, s, path,
			           json_pack("{ssssss}", "file", path, "id", row.id, "status",
			                     row.status));
		free(old);
		exec_row_release(&row);
		return;
	}
	struct plan *plan = NULL;
	struct doc *doc = NULL;
	struct diag_list dl = DIAG_LIST_INIT;
	struct strbuf err = STRBUF_INIT;
	int r;
	if (in->bucket) {
		char *text;
		size_t len;
		r = s3_get_url(path, PLAN_MAX_BYTES, &text, &len, &err);
		if (r == 0) {
			r = doc_parse(path, text, len, doc_guess_syntax(path, text, len), &doc,
			              &dl);
			free(text);
			if (r == 0)
				r = plan_from_doc(doc, NULL, 0, &plan, &dl, &err);
		} else {
			s->taken = false; /* S3 unreachable: try again at the next poll */
			fprintf(stderr, "steppy serve: inbox: %s\n", err.buf);
			strbuf_release(&err);
			return;
		}
	} else {
		r = plan_load(path, NULL, 0, &plan, &doc, &dl, &err);
	}
	if (r == 0 && exec_policy_check_plan(runtime_exec_policy(in->rt), plan, true, &dl) < 0) {
		plan_free(plan);
		plan = NULL;
		r = SP_EINVAL;
	}
	if (r < 0) {
		json_t *errors = json_array();
		for (size_t i = 0; i < dl.len; i++)
			json_array_append_new(
			    errors, json_pack("{sisiss?ss}", "line", (int)dl.items[i].pos.line,
			                      "column", (int)dl.items[i].pos.col, "pointer",
			                      dl.items[i].pointer, "message", dl.items[i].message));
		if (err.len)
			json_array_append_new(errors, json_pack("{ss}", "message", err.buf));
		put_result(
		    in, s, path,
		    json_pack("{sssssO}", "file", path, "status", "INVALID", "errors", errors));
		json_decref(errors);
		fprintf(stderr,
		        "steppy serve: inbox: %s is not a valid plan (see %s.result.json)\n", path,
		        path);
	} else {
		const char *id;
		char *by = in->bucket ? xstrfmt("inbox:s3://%s/%s", in->bucket, in->prefix)
		                      : xstrfmt("inbox:%s", in->dir);
		/* Written first: a release may end within runtime_submit_as(),
		 * and inbox_finished() then writes the final status. */
		put_result(in, s, path,
		           json_pack("{ssssss}", "file", path, "id", s->id, "status", "RUNNING"));
		r = runtime_submit_as(in->rt, plan, path, by, s->id, &id, &err);
		free(by);
		if (r == 0) {
			printf("steppy serve: inbox: %s started release %s\n", path, s->id);
			fflush(stdout);
		} else {
			plan_free(plan);
			if (r != SP_ECONFLICT) {
				s->taken = false; /* try again at the next poll */
				fprintf(stderr, "steppy serve: inbox: cannot start %s: %s\n", path,
				        err.buf);
				put_result(in, s, path,
				           json_pack("{ssssss}", "file", path, "status", "ERROR",
				                     "error", err.buf));
			}
		}
	}
	doc_free(doc);
	diag_list_release(&dl);
	strbuf_release(&err);
}

static struct seen *find_seen(struct inbox *in, const char *name)
{
	for (struct seen *s = in->seen; s; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

static void s3_object(void *arg, const char *key, const char *etag)
{
	struct inbox *in = arg;
	const char *name = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
	if (!plan_name(name))
		return;
	struct seen *s = find_seen(in, key);
	if (s && !strcmp(s->etag, etag) && s->taken)
		return;
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->name = xstrdup(key);
		s->next = in->seen;
		in->seen = s;
	}
	free(s->etag);
	s->etag = xstrdup(etag);
	char *path = xstrfmt("s3://%s/%s", in->bucket, key);
	/* the object's address and ETag name this version of it */
	struct stat sb = { 0 };
	char *versioned = xstrfmt("%s#%s", path, etag);
	derive_id(versioned, &sb, s->id);
	free(versioned);
	take(in, s, path);
	free(path);
}

static void poll_cb(uv_timer_t *t)
{
	struct inbox *in = t->data;
	if (in->bucket) {
		struct strbuf err = STRBUF_INIT;
		if (s3_list(in->bucket, in->prefix, s3_object, in, &err) < 0)
			fprintf(stderr, "steppy serve: inbox: s3://%s/%s: %s\n", in->bucket,
			        in->prefix, err.buf);
		strbuf_release(&err);
		return;
	}
	DIR *d = opendir(in->dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!plan_name(de->d_name))
			continue;
		char *path = xstrfmt("%s/%s", in->dir, de->d_name);
		struct stat sb;
		if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			free(path);
			continue;
		}
		int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
		struct seen *s = find_seen(in, de->d_name);
		if (!s) {
			s = xcalloc(1, sizeof(*s));
			s->name = xstrdup(de->d_name);
			s->next = in->seen;
			in->seen = s;
		} else if (s->mtime_ns == mtime && s->size == sb.st_size) {
			/* unchanged for a whole poll: complete */
			if (!s->taken)
				take(in, s, path);
			free(path);
			continue;
		}
		s->mtime_ns = mtime;
		s->size = sb.st_size;
		s->taken = false;
		derive_id(path, &sb, s->id);
		free(path);
	}
	closedir(d);
}

void inbox_finished(struct inbox *in, const char *id, const char *status)
{
	if (!in)
		return;
	for (struct seen *s = in->seen; s; s = s->next)
		if (s->taken && !strcmp(s->id, id)) {
			char *path = in->bucket ? xstrfmt("s3://%s/%s", in->bucket, s->name)
			                        : xstrfmt("%s/%s", in->dir, s->name);
			put_result(in, s, path,
			           json_pack("{ssssss}", "file", path, "id", id, "status", status));
			free(path);
		}
}

struct inbox *inbox_start(uv_loop_t *loop, struct runtime *rt, struct store *st, const char *dir,
                          int64_t poll_ms)
{
	struct inbox *in = xcalloc(1, sizeof(*in));
	in->rt = rt;
	in->st = st;
	if (s3_is_url(dir)) {
		const char *b = dir + 5;
		size_t n = strcspn(b, "/");
		in->bucket = xstrndup(b, n);
		in->prefix = xstrdup(b[n] ? b + n + 1 : "");
	} else {
		char *abs = realpath(dir, NULL);
		in->dir = abs ? abs : xstrdup(dir);
	}
	uv_timer_init(loop, &in->timer);
	in->timer.data = in;
	uv_timer_start(&in->timer, poll_cb, 0, (uint64_t)poll_ms);
	return in;
}

static void inbox_close_cb(uv_handle_t *h)
{
	struct inbox *in = h->data;
	while (in->seen) {
		struct seen *s = in->seen;
		in->seen = s->next;
		free(s->name);
		free(s->etag);
		free(s->status);
		free(s);
	}
	free(in->dir);
	free(in->bucket);
	free(in->prefix);
	free(in);
}

void inbox_stop(struct inbox *in)
{
	if (!in)
		return;
	uv_timer_stop(&in->timer);
	uv_close((uv_handle_t *)&in->timer, inbox_close_cb);
}
