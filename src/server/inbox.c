/*
 * inbox.c - release plans dropped into a directory, or put under an S3
 * prefix, start releases, as the original design's "input" file did.
 *
 * What is a plan: names ending in .json, .jsonc, .yaml or .yml, and the
 * original design's extension-less "input" (its syntax is sniffed from the
 * first non-blank character, never by trying one parser after the other).
 * Hidden names, *.tmp (a file being written), *.result.json (ours) and
 * *.vars.json (variables, below) are never taken and never mentioned; any
 * other name is mentioned in the log with the reason it is ignored, once
 * for each version of it (recorded in the store, so also across restarts).
 *
 * When a file is taken: an S3 object at once (objects appear whole). A
 * local file when nothing writes it any more: it has not changed over a
 * whole poll (size, modification time, inode) and inotify saw no write
 * since its last close; or it was renamed into the directory (write
 * NAME.tmp, then rename) and not written since. So a writer that keeps the
 * file open while it pauses for longer than a poll is waited for; one that
 * closes and reopens it is not, which is why the rename is the documented
 * way. Without inotify (queue overflow, no instance) only the poll counts.
 *
 * Local files are read without following symbolic links (O_NOFOLLOW), only
 * when they are regular files (fstat after open; a FIFO does not block the
 * open), and only when still the version listed. Results are written
 * 0600, whatever the umask, to NAME.result.json.tmp created with O_EXCL |
 * O_NOFOLLOW (a symlink there is removed, never written through), then
 * renamed over NAME.result.json.
 *
 * Variables: NAME.vars.json beside the plan NAME, a JSON object of strings,
 * is read with it; its version is part of the plan's version, so writing
 * it again starts the plan again. Or one file carries both, a wrapper
 * { "plan": {...}, "vars": {...} } (unwrap()).
 *
 * The release id is derived from the version: path, size and modification
 * time (an object's address and ETag), and the variables file's; the
 * release is created under that id, so a version starts exactly one
 * release, also across restarts (the second creation fails on the existing
 * id). A version that is invalid is recorded in the store (inbox_files), so
 * a restart does not read or report it again; so is a plan version taken
 * with variables, without them, so that deleting the variables file does
 * not take the plan again.
 *
 * The outcome goes next to the file, in NAME.result.json: the release id
 * and status when it starts, the final status when it ends, or the plan's
 * errors when it is invalid.
 *
 * Every name that reaches the log goes through say(), which escapes control
 * characters: a file name cannot forge log lines or drive a terminal (the
 * release's planFile is escaped the same way).
 *
 * S3 calls are made synchronously on the loop thread (a list per poll, a
 * read and a write per new object): a slow S3 holds the loop that long. A
 * poll reads at most INBOX_READS_PER_POLL plan versions and mentions at
 * most INBOX_MENTIONS_PER_POLL ignored names; the rest wait for the next.
 */
#include "server/inbox.h"
#include "server/log.h"

#include "notify/notify.h"

#include "aws/s3.h"
#include "plan/limits.h"
#include "plan/plan.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"
#include "util/utf8.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Most variables a NAME.vars.json may give (as many as a plan may declare). */
#define INBOX_MAX_VARS 1000
/* Most ignored names looked up in the store (and mentioned) per poll: each
 * costs a store write, on the loop thread. */
#define INBOX_MENTIONS_PER_POLL 20
/* Most plan versions read (and started or reported) per poll: each costs a
 * read (an S3 GET), a parse and writes, on the loop thread. */
#define INBOX_READS_PER_POLL 20

/* One version of a local file, as fstatat() saw it. */
struct version {
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
	bool regular; /* a regular file (symlinks are not followed) */
};

/* A name the inbox has seen: a plan, a variables file, or an ignored name. */
struct seen {
	char *name;       /* file name, or S3 key */
	char *etag;       /* S3: the ETag of the version listed */
	char *status;     /* S3: the last status written to its result */
	struct version v; /* local: the version listed at the last poll */
	bool stable;      /* local: v unchanged since the poll before */
	bool writing;     /* inotify: written, and not closed since */
	bool moved_in;    /* inotify: renamed into the directory, not written since */
	bool taken;       /* this version (id) is dealt with */
	bool running;     /* its release runs: keep it until inbox_finished() */
	bool mentioned;   /* ignored, or not a regular file: said so in the log */
	unsigned gen;     /* the last poll that listed it */
	char id[11];      /* the release id of the version (plan and variables) */
	struct seen *next;
};

struct inbox {
	struct runtime *rt;
	struct store *st;      /* for lookups from the loop thread */
	char *dir;             /* a directory, or NULL */
	int dirfd;             /* the directory as opened by the last poll, or -1 */
	int ifd, wd;           /* inotify instance and watch of dir, or -1 */
	uv_poll_t ipoll;       /* readable inotify instance (when ifd >= 0) */
	char *bucket, *prefix; /* an S3 prefix, or NULL */
	uv_timer_t timer;
	int handles; /* libuv handles not closed yet; memory goes with the last */
	unsigned gen;
	int mentions; /* ignored names looked up (and mentioned) in this poll */
	int reads;    /* plan versions read in this poll */
	struct seen *seen;
	struct channel *const *channels; /* the server's, borrowed */
	size_t nchannels;
};

/* ---- names ------------------------------------------------------------------ */

enum name_kind {
	NAME_PLAN,    /* taken */
	NAME_VARS,    /* NAME.vars.json: read with the plan NAME */
	NAME_QUIET,   /* hidden, being written (.tmp), or ours (.result.json): silence */
	NAME_IGNORED, /* anything else: mentioned once */
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

static enum name_kind classify(const char *name)
{
	if (name[0] == '.' || !name[0] || ends_with(name, ".tmp") ||
	    ends_with(name, ".result.json"))
		return NAME_QUIET;
	if (ends_with(name, ".vars.json"))
		return NAME_VARS;
	if (!strcmp(name, "input"))
		return NAME_PLAN; /* the original design's name; syntax sniffed */
	const char *dot = strrchr(name, '.');
	if (dot && (!strcmp(dot, ".json") || !strcmp(dot, ".jsonc") || !strcmp(dot, ".yaml") ||
	            !strcmp(dot, ".yml")))
		return NAME_PLAN;
	return NAME_IGNORED;
}

/* Logs one line "steppy serve: inbox: ..." (log.h: escaped, JSON with
 * --log-format json); a warning when f is stderr, else news. */
__attribute__((format(printf, 2, 3))) static void say(FILE *f, const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	log_event(f == stderr ? "warning" : "info", "inbox", msg.buf, NULL);
	strbuf_release(&msg);
}

/* The release id of a version: 10 characters of the hash of key, in the
 * alphabet of generated ids. */
static void version_id(const char *key, char out[11])
{
	static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
	unsigned char h[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)key, strlen(key), h);
	for (int i = 0; i < 10; i++)
		out[i] = alphabet[h[i] & 31];
	out[10] = '\0';
}

/* The display address of an entry: DIR/NAME or s3://BUCKET/KEY (caller frees). */
static char *address(const struct inbox *in, const struct seen *s)
{
	return in->bucket ? xstrfmt("s3://%s/%s", in->bucket, s->name)
	                  : xstrfmt("%s/%s", in->dir, s->name);
}

static struct seen *find_seen(struct inbox *in, const char *name)
{
	for (struct seen *s = in->seen; s; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

static struct seen *get_seen(struct inbox *in, const char *name)
{
	struct seen *s = find_seen(in, name);
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->name = xstrdup(name);
		s->next = in->seen;
		in->seen = s;
	}
	return s;
}

/* The variables file of a plan entry, if the last poll listed it. */
static struct seen *vars_of(struct inbox *in, const struct seen *plan)
{
	char *name = xstrfmt("%s.vars.json", plan->name);
	struct seen *v = find_seen(in, name);
	free(name);
	return v && v->gen == in->gen ? v : NULL;
}

/* ---- local files: reading and writing without following links ----------- */

/*
 * Reads the regular file name of directory dirfd, without following a
 * symlink and without blocking on a FIFO, if it is still the version want
 * (NULL: any regular file). Returns 0 and the text (caller frees; NUL-
 * terminated) and its length; 1 if it is gone, no longer that version, or
 * not a regular file (look again at the next poll); SP_EIO or SP_ETOOBIG
 * with the reason in err.
 */
static int read_regular(int dirfd, const char *name, const struct version *want, size_t max,
                        char **ret, size_t *ret_len, struct strbuf *err)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP || errno == ENXIO)
			return 1;
		strbuf_addf(err, "cannot open: %s", strerror(errno));
		return SP_EIO;
	}
	struct stat sb;
	int r = 0;
	if (fstat(fd, &sb) < 0) {
		strbuf_addf(err, "cannot read: %s", strerror(errno));
		r = SP_EIO;
	} else if (!S_ISREG(sb.st_mode)) {
		r = 1;
	} else if (want &&
	           (sb.st_dev != want->dev || sb.st_ino != want->ino || sb.st_size != want->size ||
	            (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec !=
	                want->mtime_ns)) {
		r = 1;
	} else if ((uint64_t)sb.st_size > max) {
		strbuf_addf(err, "larger than %zu bytes", max);
		r = SP_ETOOBIG;
	}
	if (r != 0) {
		close(fd);
		return r;
	}
	size_t size = (size_t)sb.st_size, len = 0;
	char *text = xmalloc(size + 1);
	while (len < size) {
		ssize_t n = read(fd, text + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			strbuf_addf(err, "cannot read: %s", strerror(errno));
			free(text);
			close(fd);
			return SP_EIO;
		}
		if (n == 0)
			break; /* shortened meanwhile: the version check catches it next poll */
		len += (size_t)n;
	}
	close(fd);
	text[len] = '\0';
	*ret = text;
	*ret_len = len;
	return 0;
}

/*
 * Writes text to NAME.result.json of directory dirfd: a new file
 * NAME.result.json.tmp (O_EXCL | O_NOFOLLOW, 0600 whatever the umask),
 * renamed over the result. Something already at the temporary name (a
 * leftover, or a symlink planted there) is removed, never written through.
 * Returns 0, or -1 with the reason in err.
 */
static int write_result_file(int dirfd, const char *name, const char *text, struct strbuf *err)
{
	char *target = xstrfmt("%s.result.json", name);
	char *tmp = xstrfmt("%s.result.json.tmp", name);
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;
	int fd = openat(dirfd, tmp, flags, 0600);
	if (fd < 0 && errno == EEXIST && unlinkat(dirfd, tmp, 0) == 0)
		fd = openat(dirfd, tmp, flags, 0600);
	int r = 0;
	if (fd < 0) {
		strbuf_addf(err, "cannot create %s: %s", tmp, strerror(errno));
		r = -1;
	} else {
		size_t len = strlen(text), done = 0;
		if (fchmod(fd, 0600) < 0)
			r = -1;
		while (r == 0 && done < len) {
			ssize_t n = write(fd, text + done, len - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				r = -1;
			else
				done += (size_t)n;
		}
		if (close(fd) < 0)
			r = -1;
		if (r == 0 && renameat(dirfd, tmp, dirfd, target) < 0)
			r = -1;
		if (r < 0) {
			strbuf_addf(err, "cannot write %s: %s", target, strerror(errno));
			unlinkat(dirfd, tmp, 0);
		}
	}
	free(target);
	free(tmp);
	return r;
}

/* ---- results ------------------------------------------------------------------ */

/* Writes the result of entry s (taking doc): a file beside it, or an S3 object. */
static void put_result(struct inbox *in, struct seen *s, json_t *doc)
{
	if (!doc)
		return; /* json_pack() refused a string (names are checked: never) */
	const char *status = json_string_value(json_object_get(doc, "status"));
	if (in->bucket && status && s->status && !strcmp(s->status, status)) {
		json_decref(doc);
		return; /* written already */
	}
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	size_t len = strlen(text);
	text = xrealloc(text, len + 2);
	text[len++] = '\n';
	text[len] = '\0';
	struct strbuf err = STRBUF_INIT;
	int r;
	if (in->bucket) {
		char *key = xstrfmt("%s.result.json", s->name);
		r = s3_put(in->bucket, key, "application/json", text, len, &err);
		if (r < 0)
			say(stderr, "cannot write s3://%s/%s: %s", in->bucket, key, err.buf);
		free(key);
	} else {
		r = in->dirfd < 0 ? -1 : write_result_file(in->dirfd, s->name, text, &err);
		if (r < 0)
			say(stderr, "%s/%s: %s", in->dir, s->name,
			    err.len ? err.buf : "no directory");
	}
	if (r == 0 && status) {
		free(s->status);
		s->status = xstrdup(status);
	}
	strbuf_release(&err);
	free(text);
	json_decref(doc);
}

/* The status recorded in the local result file of s, or NULL (caller frees). */
static char *result_status(struct inbox *in, const struct seen *s)
{
	char *name = xstrfmt("%s.result.json", s->name);
	char *text = NULL;
	size_t len;
	struct strbuf err = STRBUF_INIT;
	char *out = NULL;
	if (in->dirfd >= 0 &&
	    read_regular(in->dirfd, name, NULL, 1 << 20, &text, &len, &err) == 0) {
		json_t *doc = json_loadb(text, len, 0, NULL);
		const char *status = json_string_value(json_object_get(doc, "status"));
		out = status ? xstrdup(status) : NULL;
		json_decref(doc);
	}
	free(text);
	free(name);
	strbuf_release(&err);
	return out;
}

/* ---- taking a version: plan, variables, release ------------------------------- */

/* Reads the text of entry s: 0 and the text (caller frees), 1 when it changed
 * since listed (look again next poll), or <0 with the reason in err. */
static int read_entry(struct inbox *in, const struct seen *s, char **ret, size_t *ret_len,
                      struct strbuf *err)
{
	if (!in->bucket)
		return read_regular(in->dirfd, s->name, &s->v, PLAN_MAX_BYTES, ret, ret_len, err);
	char *url = address(in, s);
	int r = s3_get_url(url, PLAN_MAX_BYTES, ret, ret_len, err);
	free(url);
	return r;
}

/*
 * Reads variables from the text of a NAME.vars.json: a JSON object of
 * strings. Returns 0 with *ret_vals (caller frees the array; the strings are
 * borrowed from *ret_json, which the caller releases), or -1 with entries
 * added to errors (never quoting the text: values may be secrets).
 */
static int parse_vars(const char *file, const char *text, size_t len, json_t **ret_json,
                      struct var_value **ret_vals, size_t *ret_n, json_t *errors)
{
	json_error_t je;
	json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!obj) {
		char *near = strstr(je.text, " near ");
		if (near)
			*near = '\0'; /* jansson quotes the text there */
		json_array_append_new(errors, json_pack("{sssisiss}", "file", file, "line", je.line,
		                                        "column", je.column, "message", je.text));
		return -1;
	}
	if (!json_is_object(obj) || json_object_size(obj) > INBOX_MAX_VARS) {
		json_array_append_new(errors, json_pack("{ssss}", "file", file, "message",
		                                        json_is_object(obj)
		                                            ? "more than 1000 variables"
		                                            : "must be a JSON object of strings "
		                                              "({\"NAME\": \"value\"})"));
		json_decref(obj);
		return -1;
	}
	struct var_value *vals = xcalloc(json_object_size(obj) + 1, sizeof(*vals));
	size_t n = 0;
	int r = 0;
	const char *key;
	json_t *value;
	json_object_foreach(obj, key, value)
	{
		if (!json_is_string(value)) {
			struct strbuf ptr = STRBUF_INIT;
			json_pointer_push(&ptr, key);
			json_array_append_new(errors,
			                      json_pack("{ssssss}", "file", file, "pointer",
			                                ptr.buf, "message", "must be a string"));
			strbuf_release(&ptr);
			r = -1;
			continue;
		}
		vals[n].name = key;
		vals[n].value = json_string_value(value);
		n++;
	}
	if (r < 0) {
		free(vals);
		json_decref(obj);
		return -1;
	}
	*ret_json = obj;
	*ret_vals = vals;
	*ret_n = n;
	return 0;
}

static void add_node_error(json_t *errors, const struct doc_node *node, const char *pointer,
                           const char *message)
{
	json_array_append_new(errors, json_pack("{sisissss}", "line", (int)node->pos.line, "column",
	                                        (int)node->pos.col, "pointer", pointer, "message",
	                                        message));
}

/*
 * A plan may come wrapped with its variables, in one file (one S3 PUT):
 * { "plan": { ...a plan... }, "vars": { "NAME": "value" } }. A plan itself
 * never has a member "plan", so that member tells. Returns 0 if doc is not
 * a wrapper; 1 with *view set to doc seen from the plan (sharing its nodes
 * and text: never doc_free() it) and the variables appended to *vals
 * (strings borrowed from doc); -1 with entries added to errors (never
 * quoting values: they may be secrets).
 */
static int unwrap(const struct doc *doc, struct doc *view, struct var_value **vals, size_t *nvals,
                  bool vars_file, json_t *errors)
{
	const struct doc_node *root = doc->root;
	if (root->kind != DOC_OBJECT || !doc_get(root, "plan"))
		return 0;
	const struct doc_node *plan = NULL, *vars = NULL;
	int r = 1;
	for (size_t i = 0; i < root->u.object.len; i++) {
		const struct doc_member *m = &root->u.object.members[i];
		struct strbuf ptr = STRBUF_INIT;
		json_pointer_push(&ptr, m->key);
		const struct doc_node **slot = !strcmp(m->key, "plan")   ? &plan
		                               : !strcmp(m->key, "vars") ? &vars
		                                                         : NULL;
		if (!slot || *slot) {
			add_node_error(errors, m->value, ptr.buf,
			               slot ? "given twice"
			                    : "unknown field: a wrapper has \"plan\" "
			                      "and \"vars\" only");
			r = -1;
		} else {
			*slot = m->value;
		}
		strbuf_release(&ptr);
	}
	if (plan && plan->kind != DOC_OBJECT) {
		add_node_error(errors, plan, "/plan", "must be an object (the plan)");
		r = -1;
	}
	if (vars && vars_file) {
		add_node_error(errors, vars, "/vars",
		               "variables given twice: here and in the NAME.vars.json file");
		r = -1;
	} else if (vars && (vars->kind != DOC_OBJECT || vars->u.object.len > INBOX_MAX_VARS)) {
		add_node_error(errors, vars, "/vars",
		               vars->kind != DOC_OBJECT ? "must be an object of strings"
		                                        : "more than 1000 variables");
		r = -1;
	}
	if (r < 0)
		return r;
	size_t n = vars ? vars->u.object.len : 0;
	*vals = xrealloc(*vals, (*nvals + n + 1) * sizeof(**vals));
	for (size_t i = 0; i < n; i++) {
		const struct doc_member *m = &vars->u.object.members[i];
		const struct doc_node *v = m->value;
		bool twice = false;
		for (size_t j = 0; j < i && !twice; j++)
			twice = !strcmp(vars->u.object.members[j].key, m->key);
		if (twice || v->kind != DOC_STRING || strlen(v->u.string.s) != v->u.string.len) {
			struct strbuf ptr = STRBUF_INIT;
			strbuf_addstr(&ptr, "/vars");
			json_pointer_push(&ptr, m->key);
			add_node_error(errors, v, ptr.buf,
			               twice ? "given twice" : "must be a string (quote numbers)");
			strbuf_release(&ptr);
			r = -1;
			continue;
		}
		(*vals)[*nvals].name = m->key;
		(*vals)[(*nvals)++].value = v->u.string.s;
	}
	if (r < 0)
		return r;
	*view = *doc;
	view->root = (struct doc_node *)plan;
	return 1;
}

/* Records an invalid version: its errors in the result, one line in the log,
 * and the store, so that a restart does not report it again. */
static void report_invalid(struct inbox *in, struct seen *s, const char *path, json_t *errors)
{
	put_result(in, s,
	           json_pack("{sssssO}", "file", path, "status", "INVALID", "errors", errors));
	say(stderr, "%s is not a valid plan (see %s.result.json)", path, path);
	struct strbuf err = STRBUF_INIT;
	if (store_inbox_file_put(in->st, s->id, "INVALID", wall_clock_ms(), &err) < 0)
		say(stderr, "%s: %s", path, err.buf);
	strbuf_release(&err);
}

/* Starts the release of a valid plan (taken) under the version's id. */
static void start_release(struct inbox *in, struct seen *s, const char *path, struct plan *plan)
{
	const char *id;
	struct strbuf err = STRBUF_INIT;
	char *by = in->bucket ? xstrfmt("inbox:s3://%s/%s", in->bucket, in->prefix)
	                      : xstrfmt("inbox:%s", in->dir);
	/* The result names the release only once it is recorded. It may end
	 * within runtime_submit_as(): inbox_finished() then clears running and
	 * writes the final status, which RUNNING must not overwrite. */
	s->running = true;
	/* The release's planFile is shown by list, show and the dashboard:
	 * escaped like the log, so a name cannot drive a terminal there either. */
	struct strbuf file = STRBUF_INIT;
	strbuf_add_escaped(&file, path, strlen(path));
	int r = runtime_submit_as(in->rt, plan, file.buf, by, s->id, &id, &err);
	strbuf_release(&file);
	free(by);
	if (r == 0) {
		if (s->running)
			put_result(
			    in, s,
			    json_pack("{ssssss}", "file", path, "id", s->id, "status", "RUNNING"));
		say(stdout, "%s started release %s", path, s->id);
	} else {
		plan_free(plan);
		if (r != SP_ECONFLICT) {
			s->taken = false; /* try again at the next poll */
			s->running = false;
			say(stderr, "cannot start %s: %s", path, err.buf);
			put_result(in, s,
			           json_pack("{ssssss}", "file", path, "status", "ERROR", "error",
			                     err.buf));
		}
	}
	strbuf_release(&err);
}

static void compute_id(const struct inbox *in, const struct seen *s, const struct seen *vars,
                       char id[11]);

/* Takes the version of entry s (with its variables file vars, or NULL):
 * starts its release, or reports why it cannot. */
/*
 * Whether plan file s was dealt with before a restart: started (its result
 * is brought up to date with how the release stands) or reported invalid.
 */
static bool taken_before(struct inbox *in, struct seen *s, const char *path)
{
	struct exec_row row;
	char *recorded = NULL;
	if (store_get(in->st, s->id, &row, NULL) == 0) {
		/* Started before (by this server before a restart): record how it
		 * ended if the result does not say so yet. */
		char *old = in->bucket ? NULL : result_status(in, s);
		s->running = !strcmp(row.status, "RUNNING");
		if (!old || strcmp(old, row.status) != 0)
			put_result(in, s,
			           json_pack("{ssssss}", "file", path, "id", row.id, "status",
			                     row.status));
		free(old);
		exec_row_release(&row);
		return true;
	}
	if (store_inbox_file_get(in->st, s->id, &recorded, NULL) == 1) {
		free(recorded); /* reported before a restart: its result says so */
		return true;
	}
	return false;
}

/* One plan file being taken: what was read of it and made of it. */
struct take {
	char *path, *vpath; /* the plan's and its variables' addresses (owned) */
	char *text, *vtext; /* their contents (owned) */
	size_t len, vlen;
	json_t *vjson;          /* the variables file, parsed (vals point into it) */
	struct var_value *vals; /* the variables' values (owned array) */
	size_t nvals;
	json_t *errors;      /* problems for the result file: [{file|line..., message}] */
	struct diag_list dl; /* the plan's diagnostics */
	struct doc *doc;     /* the plan file as read */
	struct doc view;     /* the plan inside a wrapper: doc with another root */
	const char *under;   /* "/plan" when the plan sits in a wrapper, else "" */
	struct plan *plan;   /* the plan, when valid (owned until started) */
	struct strbuf err;   /* a problem that is not a diagnostic */
};

static void take_release(struct take *t)
{
	doc_free(t->doc);
	diag_list_release(&t->dl);
	plan_free(t->plan);
	free(t->vals);
	json_decref(t->vjson);
	json_decref(t->errors);
	free(t->text);
	free(t->vtext);
	free(t->vpath);
	free(t->path);
	strbuf_release(&t->err);
}

/* Reads the plan file and its variables file (vars, or NULL). Returns 0,
 * 1 when a file changed since it was listed, or a negative code. */
static int take_read(struct inbox *in, struct seen *s, struct seen *vars, struct take *t)
{
	int r = read_entry(in, s, &t->text, &t->len, &t->err);
	if (r == 0 && vars && !in->bucket && !vars->v.regular) {
		json_array_append_new(
		    t->errors, json_pack("{ssss}", "file", t->vpath, "message",
		                         "not a regular file (symbolic links are not followed)"));
		r = SP_EINVAL;
	} else if (r == 0 && vars) {
		struct strbuf verr = STRBUF_INIT;
		r = read_entry(in, vars, &t->vtext, &t->vlen, &verr);
		if (r < 0)
			strbuf_addf(&t->err, "%s: %s", t->vpath, verr.buf);
		strbuf_release(&verr);
	}
	return r;
}

/* Makes the plan of what take_read() read: variables, the document (maybe
 * in a wrapper), the plan bound, the server's exec policy and channels.
 * Returns 0 with t->plan, or a negative code with the problems in t. */
static int take_plan(struct inbox *in, bool with_vars, struct take *t)
{
	int r = 0;
	if (with_vars &&
	    parse_vars(t->vpath, t->vtext, t->vlen, &t->vjson, &t->vals, &t->nvals, t->errors) < 0)
		return SP_EINVAL;
	r = doc_parse(t->path, t->text, t->len, doc_guess_syntax(t->path, t->text, t->len), &t->doc,
	              &t->dl);
	if (r == 0) {
		int w = unwrap(t->doc, &t->view, &t->vals, &t->nvals, with_vars, t->errors);
		if (w < 0)
			return SP_EINVAL;
		if (w == 1)
			t->under = "/plan";
		r = plan_from_doc(w == 1 ? &t->view : t->doc, t->vals, t->nvals, &t->plan, &t->dl,
		                  &t->err);
	}
	if (r == 0 &&
	    exec_policy_check_plan(runtime_exec_policy(in->rt), t->plan, true, &t->dl) < 0)
		r = SP_EINVAL;
	/* A channel the server does not have would lose a Human step's approval link. */
	if (r == 0 &&
	    channels_check_plan(in->channels, in->nchannels, t->plan->doc, "this server", &t->dl))
		r = SP_EINVAL;
	if (r < 0) {
		plan_free(t->plan);
		t->plan = NULL;
	}
	return r;
}

/* Records why the plan file s is invalid (r: the code take_plan() gave). */
static void take_refuse(struct inbox *in, struct seen *s, struct take *t, int r)
{
	for (size_t i = 0; i < t->dl.len; i++) {
		const struct diag *d = &t->dl.items[i];
		char *ptr = d->pointer ? xstrfmt("%s%s", t->under, d->pointer) : NULL;
		json_array_append_new(t->errors, json_pack("{sisiss?ss}", "line", (int)d->pos.line,
		                                           "column", (int)d->pos.col, "pointer",
		                                           ptr, "message", d->message));
		free(ptr);
	}
	if (t->err.len)
		json_array_append_new(t->errors, json_pack("{ss}", "message", t->err.buf));
	if (r == SP_EUSAGE) { /* variables: say where an inbox plan gets them */
		char *hint = xstrfmt("values of variables come from %s.vars.json beside the "
		                     "plan (a JSON object of strings), or from \"vars\" in a "
		                     "wrapper {\"plan\": ..., \"vars\": ...}",
		                     s->name);
		json_array_append_new(t->errors, json_pack("{ss}", "message", hint));
		free(hint);
	}
	report_invalid(in, s, t->path, t->errors);
}

/* This version of the plan is dealt with, with these variables: deleting
 * the variables file must not take it again without. */
static void mark_taken_bare(struct inbox *in, struct seen *s, const char *path)
{
	char bare[11];
	struct strbuf serr = STRBUF_INIT;
	compute_id(in, s, NULL, bare);
	if (store_inbox_file_put(in->st, bare, "TAKEN", wall_clock_ms(), &serr) < 0)
		say(stderr, "%s: %s", path, serr.buf);
	strbuf_release(&serr);
}

static void take(struct inbox *in, struct seen *s, struct seen *vars)
{
	s->taken = true;
	struct take t = { .path = address(in, s), .under = "", .err = STRBUF_INIT };
	if (taken_before(in, s, t.path)) {
		free(t.path);
		return;
	}
	in->reads++;
	t.errors = json_array();
	t.vpath = vars ? address(in, vars) : NULL;
	int r = take_read(in, s, vars, &t);
	if (r == 1 || (r < 0 && in->bucket && r != SP_ETOOBIG)) {
		/* changed since listed, or S3 unreachable: again at the next poll */
		s->taken = false;
		if (r < 0)
			say(stderr, "%s", t.err.buf);
		take_release(&t);
		return;
	}
	if (r == 0)
		r = take_plan(in, vars != NULL, &t);
	if (r < 0) {
		take_refuse(in, s, &t, r);
	} else {
		start_release(in, s, t.path, t.plan);
		t.plan = NULL;
	}
	if (vars && s->taken)
		mark_taken_bare(in, s, t.path);
	take_release(&t);
}

/* ---- polling ------------------------------------------------------------------- */

/* The version id of plan entry s with its variables vars (or none). The key
 * of a plan without variables is what it has always been, so ids of
 * releases started before variables files existed stay. */
static void compute_id(const struct inbox *in, const struct seen *s, const struct seen *vars,
                       char id[11])
{
	struct strbuf key = STRBUF_INIT;
	char *path = address(in, s);
	if (in->bucket)
		strbuf_addf(&key, "inbox:%s#%s:0.000000000:0", path, s->etag);
	else
		strbuf_addf(&key, "inbox:%s:%lld.%09lld:%lld", path,
		            (long long)(s->v.mtime_ns / 1000000000),
		            (long long)(s->v.mtime_ns % 1000000000), (long long)s->v.size);
	if (vars && in->bucket)
		strbuf_addf(&key, ":vars#%s", vars->etag);
	else if (vars)
		strbuf_addf(&key, ":vars:%lld.%09lld:%lld",
		            (long long)(vars->v.mtime_ns / 1000000000),
		            (long long)(vars->v.mtime_ns % 1000000000), (long long)vars->v.size);
	version_id(key.buf, id);
	strbuf_release(&key);
	free(path);
}

/* Sets the version id of plan entry s; a new version is taken anew. */
static void set_id(struct inbox *in, struct seen *s, const struct seen *vars)
{
	char id[11];
	compute_id(in, s, vars, id);
	if (strcmp(id, s->id) != 0) {
		memcpy(s->id, id, sizeof(id));
		s->taken = false;
		free(s->status); /* what was written concerns the old version */
		s->status = NULL;
	}
}

/* A local entry is complete: unchanged over a poll or renamed in, and not
 * being written (as far as inotify tells). */
static bool complete(const struct inbox *in, const struct seen *s)
{
	if (in->bucket || !s->v.regular)
		return true; /* a plan that is not a regular file never gets here */
	return (s->stable || s->moved_in) && !s->writing;
}

static bool utf8_valid(const char *s)
{
	for (size_t i = 0, n = strlen(s); i < n;) {
		size_t k = utf8_seq_len((const unsigned char *)s + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* Says once why entry s is ignored: once per server start, and once per
 * version of it across restarts (the store records it). */
static void mention(struct inbox *in, struct seen *s, const char *why)
{
	if (s->mentioned || in->mentions >= INBOX_MENTIONS_PER_POLL)
		return; /* the others at the next polls */
	in->mentions++;
	s->mentioned = true;
	char id[11], ignored[11];
	compute_id(in, s, NULL, id);
	char *key = xstrfmt("ignored:%s", id); /* never a plan version's id */
	version_id(key, ignored);
	free(key);
	char *recorded = NULL;
	if (store_inbox_file_get(in->st, ignored, &recorded, NULL) == 1) {
		free(recorded);
		return;
	}
	char *path = address(in, s);
	say(stderr, "%s ignored: %s", path, why);
	free(path);
	store_inbox_file_put(in->st, ignored, "IGNORED", wall_clock_ms(), NULL);
}

/* After a listing: mentions what is ignored (once), takes what is complete,
 * forgets names that are gone (unless their release still runs). */
static void judge(struct inbox *in)
{
	in->mentions = in->reads = 0;
	for (struct seen *s = in->seen; s; s = s->next) {
		if (s->gen != in->gen)
			continue;
		enum name_kind kind =
		    classify(strrchr(s->name, '/') ? strrchr(s->name, '/') + 1 : s->name);
		if (kind == NAME_IGNORED)
			mention(in, s,
			        "not a plan (plans are named *.json, *.jsonc, *.yaml, *.yml or "
			        "input)");
		if (kind != NAME_PLAN)
			continue;
		if (!utf8_valid(s->name)) {
			mention(in, s, "the name is not UTF-8");
			continue;
		}
		if (!in->bucket && !s->v.regular) {
			mention(in, s, "not a regular file (symbolic links are not followed)");
			continue;
		}
		s->mentioned = false;
		if (!in->bucket && s->v.size == 0)
			continue; /* not written yet */
		struct seen *vars = vars_of(in, s);
		set_id(in, s, vars);
		if (s->taken || !complete(in, s) || (vars && !complete(in, vars)) ||
		    in->reads >= INBOX_READS_PER_POLL)
			continue; /* (past the limit: at the next polls) */
		take(in, s, vars);
	}
	for (struct seen **p = &in->seen; *p;) {
		struct seen *s = *p;
		if (s->gen == in->gen || s->running) {
			p = &s->next;
			continue;
		}
		*p = s->next;
		free(s->name);
		free(s->etag);
		free(s->status);
		free(s);
	}
}

static void s3_object(void *arg, const char *key, const char *etag)
{
	struct inbox *in = arg;
	const char *name = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
	if (classify(name) == NAME_QUIET)
		return;
	struct seen *s = get_seen(in, key);
	s->gen = in->gen;
	if (!s->etag || strcmp(s->etag, etag) != 0) {
		free(s->etag);
		s->etag = xstrdup(etag);
	}
}

static bool same_version(const struct version *a, const struct version *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->regular == b->regular;
}

/* Lists the directory: records each name's version and whether it held still. */
static void list_directory(struct inbox *in)
{
	int fd = open(in->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (in->dirfd >= 0)
		close(in->dirfd);
	in->dirfd = fd;
	if (in->ifd >= 0 && in->wd < 0)
		in->wd = inotify_add_watch(in->ifd, in->dir,
		                           IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO |
		                               IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR);
	DIR *d = fdopendir(dup(fd));
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (classify(de->d_name) == NAME_QUIET)
			continue;
		struct stat sb;
		if (fstatat(fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		struct version v = {
			.dev = sb.st_dev,
			.ino = sb.st_ino,
			.size = sb.st_size,
			.mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec,
			.regular = S_ISREG(sb.st_mode),
		};
		struct seen *s = get_seen(in, de->d_name);
		s->stable = s->gen == in->gen - 1 && same_version(&s->v, &v);
		s->v = v;
		s->gen = in->gen;
	}
	closedir(d);
}

/* inotify: who writes which file, between polls. Reads every pending event. */
static void drain_inotify(struct inbox *in)
{
	if (in->ifd < 0)
		return;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(in->ifd, buf, sizeof(buf));
		if (n <= 0)
			return;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p;
			p += sizeof(*e) + e->len;
			if (e->mask & (IN_Q_OVERFLOW | IN_IGNORED)) {
				/* events lost, or the watch is gone: the polls alone decide */
				for (struct seen *s = in->seen; s; s = s->next)
					s->writing = s->moved_in = false;
				if (e->mask & IN_IGNORED)
					in->wd = -1;
				continue;
			}
			if (!e->len || classify(e->name) == NAME_QUIET ||
			    classify(e->name) == NAME_IGNORED)
				continue;
			struct seen *s = get_seen(in, e->name);
			if (e->mask & IN_MODIFY) {
				s->writing = true;
				s->moved_in = false;
			}
			if (e->mask & (IN_CLOSE_WRITE | IN_MOVED_FROM | IN_DELETE))
				s->writing = false;
			if (e->mask & IN_MOVED_TO) {
				s->writing = false;
				s->moved_in = true;
			}
		}
	}
}

static void inotify_cb(uv_poll_t *h, int status, int events)
{
	(void)events;
	if (status == 0)
		drain_inotify(h->data);
}

static void poll_cb(uv_timer_t *t)
{
	struct inbox *in = t->data;
	in->gen++;
	if (in->bucket) {
		struct strbuf err = STRBUF_INIT;
		if (s3_list(in->bucket, in->prefix, s3_object, in, &err) < 0) {
			say(stderr, "s3://%s/%s: %s", in->bucket, in->prefix, err.buf);
			for (struct seen *s = in->seen; s; s = s->next)
				s->gen = in->gen; /* nothing is gone: S3 did not answer */
			strbuf_release(&err);
			return;
		}
		strbuf_release(&err);
	} else {
		drain_inotify(in); /* events of this loop iteration not read yet */
		list_directory(in);
	}
	judge(in);
}

/* ---- lifecycle ----------------------------------------------------------------- */

void inbox_finished(struct inbox *in, const char *id, const char *status)
{
	if (!in)
		return;
	for (struct seen *s = in->seen; s; s = s->next)
		if (s->taken && !strcmp(s->id, id)) {
			char *path = address(in, s);
			s->running = false;
			put_result(in, s,
			           json_pack("{ssssss}", "file", path, "id", id, "status", status));
			free(path);
		}
}

struct inbox *inbox_start(uv_loop_t *loop, struct runtime *rt, struct store *st, const char *dir,
                          int64_t poll_ms, struct channel *const *channels, size_t nchannels)
{
	struct inbox *in = xcalloc(1, sizeof(*in));
	in->rt = rt;
	in->st = st;
	in->dirfd = in->ifd = in->wd = -1;
	in->channels = channels;
	in->nchannels = nchannels;
	if (s3_is_url(dir)) {
		const char *b = dir + 5;
		size_t n = strcspn(b, "/");
		in->bucket = xstrndup(b, n);
		in->prefix = xstrdup(b[n] ? b + n + 1 : "");
	} else {
		char *abs = realpath(dir, NULL);
		in->dir = abs ? abs : xstrdup(dir);
		in->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (in->ifd < 0)
			say(stderr,
			    "%s: no inotify (%s): a file is taken when it has not changed "
			    "for a poll",
			    in->dir, strerror(errno));
	}
	if (in->ifd >= 0 && uv_poll_init(loop, &in->ipoll, in->ifd) == 0) {
		in->ipoll.data = in;
		uv_poll_start(&in->ipoll, UV_READABLE, inotify_cb);
		in->handles++;
	} else if (in->ifd >= 0) {
		close(in->ifd);
		in->ifd = -1;
	}
	uv_timer_init(loop, &in->timer);
	in->timer.data = in;
	in->handles++;
	uv_timer_start(&in->timer, poll_cb, 0, (uint64_t)poll_ms);
	return in;
}

static void inbox_close_cb(uv_handle_t *h)
{
	struct inbox *in = h->data;
	if (--in->handles > 0)
		return;
	while (in->seen) {
		struct seen *s = in->seen;
		in->seen = s->next;
		free(s->name);
		free(s->etag);
		free(s->status);
		free(s);
	}
	if (in->ifd >= 0)
		close(in->ifd);
	if (in->dirfd >= 0)
		close(in->dirfd);
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
	if (in->ifd >= 0) {
		uv_poll_stop(&in->ipoll);
		uv_close((uv_handle_t *)&in->ipoll, inbox_close_cb);
	}
	uv_close((uv_handle_t *)&in->timer, inbox_close_cb);
}
