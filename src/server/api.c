/*
 * api.c - the JSON API under /api/v1, /healthz and /metrics (see
 * docs/openapi.yaml). Reads go to the store; changes go through
 * control_apply() or, for submissions and retries, a job on the loop thread.
 */
#include "server/server-internal.h"

#include "aws/aws.h"
#include "plan/doc-json.h"
#include "plan/limits.h"
#include "plan/plan.h"
#include "runtime/control.h"
#include "runtime/report.h"
#include "runtime/runner.h"
#include "server/auth.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"
#include "util/version.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DECISION_WAIT_MS 10000
#define STREAM_POLL_MS   500
#define STREAM_PING_MS   15000
#define MAX_STREAMS      256

static const char *const statuses[] = { "RUNNING", "SUCCEEDED", "FAILED", "REJECTED",
	                                "ABORTED", "WAITING",   NULL };

/* /healthz answers anyone: while the store is down it says only "store
 * unreachable", never the store's error, which names its address (a URL's
 * hosts and users, a socket directory); the log has it all. */
static void h_health(struct request *rq)
{
	char why[256];
	if (rq->srv->rt && !runtime_store_ok(rq->srv->rt, why, sizeof(why))) {
		respond_json(rq, 503,
		             json_pack("{sssssss{ssso}}", "status", "unhealthy", "version",
		                       STEPPY_VERSION, "store", "unreachable", "error", "code",
		                       "store-unavailable", "message",
		                       json_string("store unreachable")));
		return;
	}
	respond_json(
	    rq, 200,
	    json_pack("{ssssss}", "status", "ok", "version", STEPPY_VERSION, "store", "ok"));
}

/* Changes need a store that accepts writes: while it refuses them (the
 * runtime retries), answers 503 at once and returns false. */
static bool writable(struct request *rq)
{
	char why[256];
	if (!rq->srv->rt || runtime_store_ok(rq->srv->rt, why, sizeof(why)))
		return true;
	respond_error(rq, 503, "store-unavailable",
	              "the store does not accept writes now (%s); steppy retries; try again "
	              "later",
	              why);
	return false;
}

/* ---- reading ------------------------------------------------------------------ */

/* A store connection, or answers 503. */
static struct store *store_or_503(struct request *rq)
{
	struct strbuf err = STRBUF_INIT;
	struct store *st = server_store_get(rq->srv, &err);
	if (!st)
		respond_error(rq, 503, "store-unavailable", "%s", err.buf);
	strbuf_release(&err);
	return st;
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v = s && *s ? strtol(s, &end, 10) : 0;
	if (!s || !*s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

struct list_acc {
	json_t *array;
};

static void add_row(const struct exec_row *row, void *arg)
{
	struct list_acc *acc = arg;
	json_array_append_new(acc->array, exec_row_json(row));
}

/* ---- answers kept in memory (answers.h) ------------------------------------------ */

/* How a kept answer is made: its document, or NULL having answered an error
 * (which is not kept). */
typedef json_t *(*make_doc_fn)(struct request *rq, void *arg);

/*
 * Answers with the answer kept for key if it was made at the store's version
 * now, else makes it (make), keeps it and answers it; with rq->quick (a poll
 * thread) only what is kept is answered, and nothing else is touched.
 *
 * The key must hold everything the answer depends on but the store. Every
 * caller the route lets in gets the same answer today (no answer depends on
 * who asks); were one to, what it depends on would have to be in its key.
 */
static void answer_kept(struct request *rq, const char *key, make_doc_fn make, void *arg)
{
	struct answers *kept = rq->srv->answers;
	struct kept_answer *a = answers_get(kept, key, answers_version(kept, rq->quick));
	if (a || rq->quick) {
		if (a)
			respond_answer(rq, a);
		return;
	}
	/* One request makes the answer; those that arrive meanwhile wait for
	 * it. The version is read again under the lock: a request that waited
	 * may use an answer made while it waited. */
	answers_make_lock(kept, key);
	int64_t version = answers_version(kept, false);
	a = answers_get(kept, key, version);
	if (!a) {
		json_t *doc = make(rq, arg);
		char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(doc);
		if (text)
			a = answers_put(kept, key, version, text, strlen(text));
		else if (doc) /* a string that is not UTF-8: respond_json() says so */
			respond_json(rq, 200, NULL);
		free(text);
	}
	answers_make_unlock(kept, key);
	if (a)
		respond_answer(rq, a);
}

struct list_query {
	const char *status; /* canonical, or NULL */
	long limit, offset;
};

static json_t *make_list(struct request *rq, void *arg)
{
	const struct list_query *q = arg;
	struct store *st = store_or_503(rq);
	if (!st)
		return NULL;
	struct list_acc acc = { .array = json_array() };
	struct strbuf err = STRBUF_INIT;
	int r = store_list(st, q->status, (int)q->limit, (int)q->offset, add_row, &acc, &err);
	server_store_put(rq->srv, st);
	json_t *doc = NULL;
	if (r < 0) {
		json_decref(acc.array);
		respond_error(rq, 503, "store-error", "%s", err.buf);
	} else {
		doc = json_pack("{so}", "executions", acc.array);
		if (r == q->limit)
			json_object_set_new(doc, "nextOffset", json_integer(q->offset + q->limit));
	}
	strbuf_release(&err);
	return doc;
}

static void h_list(struct request *rq)
{
	const char *status = request_query(rq, "status");
	long limit = 50, offset = 0;
	if (request_query(rq, "limit") && !parse_int(request_query(rq, "limit"), 1, 1000, &limit)) {
		respond_error(rq, 400, "invalid-parameter",
		              "limit must be a number from 1 to 1000");
		return;
	}
	if (request_query(rq, "offset") &&
	    !parse_int(request_query(rq, "offset"), 0, 100000000, &offset)) {
		respond_error(rq, 400, "invalid-parameter", "offset must be a number from 0");
		return;
	}
	bool known = !status;
	for (int i = 0; status && statuses[i] && !known; i++)
		if (!strcasecmp(status, statuses[i])) {
			status = statuses[i]; /* any case: running is RUNNING */
			known = true;
		}
	if (!known) {
		respond_error(
		    rq, 400, "invalid-parameter",
		    "status must be RUNNING, WAITING, SUCCEEDED, FAILED, REJECTED or ABORTED");
		return;
	}
	struct list_query q = { .status = status, .limit = limit, .offset = offset };
	char key[64];
	snprintf(key, sizeof(key), "list %s %ld %ld", status ? status : "*", limit, offset);
	answer_kept(rq, key, make_list, &q);
}

bool api_quick(const struct request *rq)
{
	/* h_list and h_get are the routes of these paths (api_routes come
	 * first in dispatch()), unless OpenID Connect's redirect path were one
	 * of them: its handler goes out to the network */
	static const char list[] = "/api/v1/executions";
	const struct serve_config *cfg = server_config(rq->srv);
	const char *u = rq->url;
	bool read = !strncmp(u, list, sizeof(list) - 1) &&
	            (!u[sizeof(list) - 1] || /* the list, or one release: h_get */
	             (u[sizeof(list) - 1] == '/' && !strchr(u + sizeof(list), '/')));
	return (!strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD")) && read &&
	       !(cfg->oidc.redirect_path && !strcmp(cfg->oidc.redirect_path, u));
}

/* Loads execution rq->params[0]: answers 404/503 and returns false if it cannot. */
static bool load_exec(struct request *rq, struct store *st, struct exec_row *row,
                      struct loaded_exec *le)
{
	struct strbuf err = STRBUF_INIT;
	int r = store_get(st, rq->params[0], row, &err);
	if (r == 0 && strcmp(row->id, rq->params[0]) != 0) {
		exec_row_release(row);
		r = SP_ENOENT; /* the API takes whole ids, not prefixes */
	}
	if (r == 0) {
		r = execution_load(st, row->id, le, &err);
		if (r < 0)
			exec_row_release(row);
	}
	if (r == SP_ENOENT || r == SP_EINVAL)
		respond_error(rq, 404, "not-found", "no execution %s", rq->params[0]);
	else if (r < 0)
		respond_error(rq, 503, "store-error", "%s", err.buf);
	strbuf_release(&err);
	return r == 0;
}

/* True if execution rq->params[0] exists (exact id); answers 404 or 503
 * and returns false if not. Reads only its summary row. */
static bool exists(struct request *rq, struct store *st)
{
	struct exec_row row;
	struct strbuf err = STRBUF_INIT;
	int r = store_get(st, rq->params[0], &row, &err);
	bool found = r == 0 && !strcmp(row.id, rq->params[0]);
	if (r == 0)
		exec_row_release(&row);
	if (r == SP_ESTORE)
		respond_error(rq, 503, "store-error", "%s", err.buf);
	else if (!found)
		respond_error(rq, 404, "not-found", "no execution %s", rq->params[0]);
	strbuf_release(&err);
	return found;
}

/* exists(), with a store connection of its own. */
static bool exists_here(struct request *rq)
{
	struct store *st = store_or_503(rq);
	bool found = st && exists(rq, st);
	server_store_put(rq->srv, st);
	return found;
}

static json_t *report_of(struct request *rq)
{
	struct store *st = store_or_503(rq);
	if (!st)
		return NULL;
	struct exec_row row;
	struct loaded_exec le;
	json_t *doc = NULL;
	if (load_exec(rq, st, &row, &le)) {
		doc = execution_report(&row, &le);
		loaded_exec_release(&le);
		exec_row_release(&row);
	}
	server_store_put(rq->srv, st);
	return doc;
}

static json_t *make_report(struct request *rq, void *arg)
{
	(void)arg;
	return report_of(rq);
}

static void h_get(struct request *rq)
{
	char key[160];
	snprintf(key, sizeof(key), "get %s", rq->params[0]);
	answer_kept(rq, key, make_report, NULL);
}

static json_t *event_json(const struct event *e, const struct plan *plan)
{
	json_t *j = json_pack("{sIsIss}", "seq", (json_int_t)e->seq, "timeMs",
	                      (json_int_t)e->time_ms, "type", event_type_name(e->type));
	if (e->stage >= 0) {
		json_object_set_new(j, "stage", json_integer(e->stage));
		json_object_set_new(j, "stageName", json_string(plan->stages[e->stage].name));
	}
	if (e->step >= 0) {
		json_object_set_new(j, "step", json_integer(e->step));
		json_object_set_new(j, "stepName",
		                    json_string(plan->stages[e->stage].steps[e->step].name));
	}
	if (e->attempt)
		json_object_set_new(j, "attempt", json_integer(e->attempt));
	json_t *data = json_deep_copy(e->data);
	if (e->type == EV_EXECUTION_STARTED)
		execution_started_redact(data);
	json_object_set_new(j, "data", data);
	return j;
}

static void h_events(struct request *rq)
{
	long after = 0, limit = 100;
	if ((request_query(rq, "after") &&
	     !parse_int(request_query(rq, "after"), 0, INT32_MAX, &after)) ||
	    (request_query(rq, "limit") &&
	     !parse_int(request_query(rq, "limit"), 1, 1000, &limit))) {
		respond_error(
		    rq, 400, "invalid-parameter",
		    "after is a sequence number (0 or more), limit a number from 1 to 1000");
		return;
	}
	struct store *st = store_or_503(rq);
	if (!st)
		return;
	struct exec_row row;
	struct loaded_exec le;
	if (!load_exec(rq, st, &row, &le)) {
		server_store_put(rq->srv, st);
		return;
	}
	server_store_put(rq->srv, st);
	json_t *events = json_array();
	size_t n = 0;
	int64_t last = after;
	for (size_t i = 0; i < le.history.len && n < (size_t)limit; i++) {
		const struct event *e = &le.history.items[i];
		if (e->seq <= after)
			continue;
		json_array_append_new(events, event_json(e, le.plan));
		last = e->seq;
		n++;
	}
	json_t *doc = json_pack("{ssso}", "id", row.id, "events", events);
	if (last < (int64_t)le.history.len)
		json_object_set_new(doc, "nextAfter", json_integer(last));
	loaded_exec_release(&le);
	exec_row_release(&row);
	respond_json(rq, 200, doc);
}

/* ---- live updates (server-sent events) --------------------------------------------- */

#define STREAM_MAX_EVENTS 1000 /* events per message at most */

struct stream {
	struct server *srv;
	struct request *rq; /* its connection's request, for server_sleep() */
	char id[128];       /* an execution, or "" for the list */
	/* An execution's stream: the seq of the last event sent (its cursor),
	 * and the plan, read once with the first report, that names the
	 * stages and steps of later events. NULL until then. */
	struct plan *plan;
	int64_t last_seq, last_version, last_ping, next_poll;
	struct store *st;
	struct strbuf pending;
	size_t sent;
	bool first;
};

/* One first report at a time: streams opened together (a dashboard
 * reloaded by many viewers) would otherwise fold the history all at once,
 * and the peak memory is one fold per stream. */
static pthread_mutex_t first_lock = PTHREAD_MUTEX_INITIALIZER;

/* The first message of an execution's stream: its whole report (one fold). */
static void stream_first(struct stream *s, const struct exec_row *row)
{
	pthread_mutex_lock(&first_lock);
	struct loaded_exec le;
	if (execution_load(s->st, row->id, &le, NULL) < 0) {
		pthread_mutex_unlock(&first_lock);
		return;
	}
	json_t *doc = execution_report(row, &le);
	char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	strbuf_addf(&s->pending, "event: execution\ndata: %s\n\n", text);
	free(text);
	json_decref(doc);
	s->last_seq = le.history.len ? le.history.items[le.history.len - 1].seq : 0;
	s->plan = le.plan; /* kept: it names the stages and steps of later events */
	le.plan = NULL;
	loaded_exec_release(&le);
	/* The fold's memory was taken in this connection thread's own malloc
	 * arena, which glibc keeps for the thread: give it back (measured:
	 * 28 MB kept per stream of a 24,000-event release without this). */
	malloc_trim(0);
	pthread_mutex_unlock(&first_lock);
}

/*
 * Later messages: only the events after the cursor (read by key range) with
 * the summary row, STREAM_MAX_EVENTS a message at most. Nothing is folded
 * again, so a stream costs the same for a release of ten events or ten
 * thousand.
 */
static void stream_next(struct stream *s, const struct exec_row *row)
{
	if (row->last_seq <= s->last_seq)
		return;
	struct event_list evs = EVENT_LIST_INIT;
	if (store_history(s->st, row->id, s->last_seq, &evs, NULL) < 0) {
		event_list_release(&evs);
		return;
	}
	for (size_t from = 0; from < evs.len; from += STREAM_MAX_EVENTS) {
		json_t *arr = json_array();
		for (size_t i = from; i < evs.len && i < from + STREAM_MAX_EVENTS; i++) {
			json_array_append_new(arr, event_json(&evs.items[i], s->plan));
			s->last_seq = evs.items[i].seq;
		}
		json_t *doc = json_pack("{soso}", "execution", exec_row_json(row), "events", arr);
		char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
		strbuf_addf(&s->pending, "event: events\ndata: %s\n\n", text);
		free(text);
		json_decref(doc);
	}
	event_list_release(&evs);
}

/* The next SSE message, when something changed: "event: X\ndata: JSON\n\n". */
static void stream_poll(struct stream *s)
{
	int64_t now = wall_clock_ms();
	if (*s->id) {
		struct exec_row row;
		if (store_get(s->st, s->id, &row, NULL) < 0)
			return;
		if (!s->plan)
			stream_first(s, &row);
		else
			stream_next(s, &row);
		exec_row_release(&row);
	} else {
		int64_t v = store_data_version(s->st);
		if (s->first || v != s->last_version) {
			s->last_version = v;
			struct list_acc acc = { .array = json_array() };
			store_list(s->st, NULL, 50, 0, add_row, &acc, NULL);
			char *text = json_dumps(acc.array, JSON_COMPACT | JSON_PRESERVE_ORDER);
			strbuf_addf(&s->pending, "event: executions\ndata: %s\n\n", text);
			free(text);
			json_decref(acc.array);
		}
	}
	s->first = false;
	if (!s->pending.len && now - s->last_ping >= STREAM_PING_MS)
		strbuf_addstr(&s->pending, ": ping\n\n");
	if (s->pending.len)
		s->last_ping = now;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct stream *s = cls;
	while (s->sent == s->pending.len) {
		strbuf_reset(&s->pending);
		s->sent = 0;
		if (s->srv->closing)
			return MHD_CONTENT_READER_END_OF_STREAM;
		int64_t now = wall_clock_ms();
		if (!s->first && now < s->next_poll) {
			/* nothing new yet: park the connection until the next poll
			 * (this is one of the server's few network threads) */
			if (!server_sleep(s->srv, s->rq, s->next_poll - now))
				return MHD_CONTENT_READER_END_OF_STREAM;
			return 0;
		}
		s->next_poll = now + STREAM_POLL_MS;
		stream_poll(s);
	}
	size_t n = s->pending.len - s->sent;
	if (n > max)
		n = max;
	memcpy(buf, s->pending.buf + s->sent, n);
	s->sent += n;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *s = cls;
	atomic_fetch_sub(&s->srv->streams, 1);
	server_store_put(s->srv, s->st);
	strbuf_release(&s->pending);
	plan_free(s->plan);
	free(s);
}

static void start_stream(struct request *rq, const char *id)
{
	/* each stream holds a thread and a store connection */
	if (atomic_fetch_add(&rq->srv->streams, 1) >= MAX_STREAMS) {
		atomic_fetch_sub(&rq->srv->streams, 1);
		respond_error(rq, 503, "too-many-streams",
		              "%d live streams are open already; try again later", MAX_STREAMS);
		return;
	}
	struct store *st = store_or_503(rq);
	if (!st) {
		atomic_fetch_sub(&rq->srv->streams, 1);
		return;
	}
	struct stream *s = xcalloc(1, sizeof(*s));
	s->srv = rq->srv;
	s->rq = rq;
	s->st = st;
	s->first = true;
	s->last_seq = -1;
	s->last_ping = wall_clock_ms();
	snprintf(s->id, sizeof(s->id), "%s", id);
	strbuf_init(&s->pending, SIZE_MAX);
	rq->stream =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
	rq->status = 200;
	rq->content_type = "text/event-stream";
}

static void h_stream_one(struct request *rq)
{
	if (exists_here(rq)) /* 404 for unknown ids before streaming */
		start_stream(rq, rq->params[0]);
}

static void h_stream_all(struct request *rq)
{
	start_stream(rq, "");
}

/* ---- submitting ------------------------------------------------------------------ */

struct submit_job {
	struct plan *plan;
	const char *label, *by;
	char id[16];
	struct strbuf err;
	int r;
};

static void do_submit(struct server *srv, void *arg)
{
	struct submit_job *j = arg;
	const char *id;
	j->r = runtime_submit(srv->rt, j->plan, j->label, j->by, &id, &j->err);
	if (j->r == 0)
		snprintf(j->id, sizeof(j->id), "%s", id);
}

static json_t *diag_json(const struct diag_list *dl)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < dl->len; i++) {
		const struct diag *d = &dl->items[i];
		json_array_append_new(arr, json_pack("{sisiss?ss}", "line", (int)d->pos.line,
		                                     "column", (int)d->pos.col, "pointer",
		                                     d->pointer, "message", d->message));
	}
	return arr;
}

/* The "variables" of a submission as values (names and values borrowed from
 * vars_in). Returns 0, or answers 400 and returns -1. *ret is the caller's. */
static int submit_variables(struct request *rq, json_t *vars_in, struct var_value **ret,
                            size_t *ret_n)
{
	size_t nvals = json_object_size(vars_in);
	struct var_value *vals = xcalloc(nvals ? nvals : 1, sizeof(*vals));
	size_t k = 0;
	const char *key;
	json_t *v;
	json_object_foreach(vars_in, key, v)
	{
		if (!json_is_string(v)) {
			respond_error(rq, 400, "invalid-body", "/variables/%s: values are strings",
			              key);
			free(vals);
			return -1;
		}
		vals[k++] = (struct var_value){ key, json_string_value(v) };
	}
	*ret = vals;
	*ret_n = nvals;
	return 0;
}

/*
 * Reads, validates and binds a submitted plan text and checks what this
 * server adds: its channels, the starter (rq's identity) being able to get
 * through its Human steps, its exec policy. Returns 0 and *ret_plan, or a
 * negative code with the reasons in dl and err. *ret_doc (the document as
 * read, for messages) is the caller's in both cases.
 */
static int submit_plan(struct request *rq, const char *name, const char *text,
                       const struct var_value *vals, size_t nvals, struct doc **ret_doc,
                       struct plan **ret_plan, struct diag_list *dl, struct strbuf *err)
{
	struct plan *plan = NULL;
	const struct serve_config *cfg = server_config(rq->srv); /* one view throughout */
	size_t len = strlen(text);
	int r = doc_parse(name, text, len, doc_guess_syntax(name, text, len), ret_doc, dl);
	if (r == 0)
		r = plan_from_doc(*ret_doc, vals, nvals, &plan, dl, err);
	/* A channel the server does not have would lose the step's approval link. */
	if (r == 0 &&
	    channels_check_plan(cfg->channel_list, cfg->nchannels, plan->doc, "this server", dl))
		r = SP_EINVAL;
	/* A Human step its starter's release could never get through. */
	if (r == 0) {
		struct diag_list starter = DIAG_LIST_INIT;
		if (approval_check_plan_starter(plan, rq->identity, &starter) > 0) {
			r = SP_EINVAL;
			diag_list_release(dl); /* the plan's warnings: not what refused it */
			*dl = starter;
		} else {
			diag_list_release(&starter);
		}
	}
	if (r == 0 && exec_policy_check_plan(&cfg->exec, plan, false, dl) < 0)
		r = SP_EINVAL;
	if (r < 0)
		plan_free(plan);
	else
		*ret_plan = plan;
	return r;
}

/* For a plan refused over its variables (SP_EUSAGE): err in the API's terms,
 * with the field's pointer. */
static void variables_message(const struct doc *doc, const struct var_value *vals, size_t nvals,
                              struct strbuf *err)
{
	const char *unbound = plan_unbound_variable(doc, vals, nvals);
	const struct doc_node *decls = doc_get(doc->root, "variables");
	const char *unknown = NULL;
	for (size_t i = 0; i < nvals && !unknown; i++)
		if (!doc_member(decls, vals[i].name))
			unknown = vals[i].name;
	struct strbuf m = STRBUF_INIT;
	if (unknown)
		strbuf_addf(&m, "/variables/%s: %s", unknown, err->buf);
	else if (unbound)
		strbuf_addf(&m,
		            "/variables/%s: variable \"%s\" has no default; give it a value in "
		            "\"variables\"",
		            unbound, unbound);
	if (m.len) {
		strbuf_release(err);
		*err = m;
	}
}

/* 400 invalid-plan: the first reason as the message, every diagnostic. */
static void respond_invalid_plan(struct request *rq, struct diag_list *dl, const struct strbuf *err)
{
	diag_list_sort(dl);
	const char *message = err->len  ? err->buf
	                      : dl->len ? dl->items[0].message
	                                : "the plan is invalid";
	json_t *body = json_pack("{s{sssssO}}", "error", "code", "invalid-plan", "message", message,
	                         "diagnostics", json_null());
	json_object_set_new(json_object_get(body, "error"), "diagnostics", diag_json(dl));
	respond_json(rq, 400, body);
}

/* Hands plan (taken) to the loop thread to start as a release; answers 201. */
static void submit_start(struct request *rq, struct plan *plan, const char *label)
{
	struct submit_job j = { .plan = plan, .label = label, .by = rq->identity };
	strbuf_init(&j.err, SIZE_MAX);
	if (server_call(rq->srv, do_submit, &j) < 0) {
		plan_free(plan);
		respond_error(rq, 503, "closing", "the server is shutting down");
	} else if (j.r < 0) {
		plan_free(plan);
		respond_error(rq, 503, "store-error", "%s", j.err.buf);
	} else {
		answers_changed(rq->srv->answers); /* this very client may list next */
		respond_json(rq, 201,
		             json_pack("{ssssss}", "id", j.id, "status", "RUNNING", "startedBy",
		                       rq->identity));
	}
	strbuf_release(&j.err);
}

static void h_submit(struct request *rq)
{
	static const char *const fields[] = { "plan", "variables", "name", NULL };
	if (!writable(rq))
		return;
	json_t *in = request_json(rq, fields);
	if (!in)
		return;
	json_t *plan_in = json_object_get(in, "plan");
	json_t *vars_in = json_object_get(in, "variables");
	const char *label = json_string_value(json_object_get(in, "name"));
	struct var_value *vals = NULL;
	size_t nvals = 0;
	if (!plan_in || !(json_is_string(plan_in) || json_is_object(plan_in)))
		respond_error(rq, 400, "invalid-body",
		              "/plan: give the plan as a JSON object, or its text (JSON or YAML) "
		              "as a string");
	else if (vars_in && !json_is_object(vars_in))
		respond_error(rq, 400, "invalid-body", "/variables: an object of NAME: \"value\"");
	else if (submit_variables(rq, vars_in, &vals, &nvals) == 0) {
		char *text = json_is_string(plan_in)
		                 ? xstrdup(json_string_value(plan_in))
		                 : json_dumps(plan_in, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		/* the label is shown by list and show: no control characters reach a terminal */
		struct strbuf safe_label = STRBUF_INIT;
		if (label)
			strbuf_add_escaped(&safe_label, label, strlen(label));
		const char *name = label ? safe_label.buf : "submitted plan";
		struct diag_list dl = DIAG_LIST_INIT;
		struct doc *doc = NULL;
		struct plan *plan = NULL;
		struct strbuf err = STRBUF_INIT;
		int r = submit_plan(rq, name, text, vals, nvals, &doc, &plan, &dl, &err);
		free(text);
		if (r == SP_EUSAGE)
			variables_message(doc, vals, nvals, &err);
		if (r < 0)
			respond_invalid_plan(rq, &dl, &err);
		else
			submit_start(rq, plan, name);
		strbuf_release(&err);
		strbuf_release(&safe_label);
		diag_list_release(&dl);
		doc_free(doc);
	}
	free(vals);
	json_decref(in);
}

/* ---- changing a release ---------------------------------------------------------- */

/* Answers a control_apply() result. */
static void control_answer(struct request *rq, int r, const char *done_what, struct strbuf *err)
{
	if (r >= 0 || r == SP_EBUSY) /* changed, or queued in the store's inbox */
		answers_changed(rq->srv->answers);
	if (r == CONTROL_DONE_BY_OWNER || r == CONTROL_DONE_HERE)
		respond_json(rq, 200,
		             json_pack("{ssss}", "id", rq->params[0], "result", done_what));
	else if (r == SP_EBUSY)
		respond_json(rq, 202,
		             json_pack("{ssssss}", "id", rq->params[0], "result", "queued",
		                       "message", err->buf));
	else if (r == SP_EINVAL)
		respond_error(rq, 409, "refused", "%s", err->buf);
	else if (r == SP_ENOENT)
		respond_error(rq, 404, "not-found", "%s", err->buf);
	else
		respond_error(rq, 503, "store-error", "%s", err->buf);
}

/*
 * Asks the engine's rule (engine_may_decide()) before queueing a decision,
 * to answer with the right status: 403 for who the person is (role, name,
 * approvers), 409 for what the step allows now. The engine applies the
 * same rule again to the decision itself. Returns true if it may go on.
 */
static bool decider_may(struct request *rq, const struct loaded_exec *le, int stage, int step,
                        bool approve)
{
	struct approval_decider d;
	request_decider(rq, &d);
	struct strbuf why = STRBUF_INIT;
	enum approval_verdict v = engine_may_decide(&le->state, stage, step, &d, approve, &why);
	if (v == APPROVAL_NOT_LISTED || v == APPROVAL_NO_NAME)
		respond_error(rq, 403, "not-an-approver", "%s", why.buf);
	else if (v == APPROVAL_NO_ROLE)
		respond_error(rq, 403, "forbidden", "%s", why.buf);
	else if (v != APPROVAL_MAY)
		respond_error(rq, 409, "refused", "%s", why.buf);
	strbuf_release(&why);
	return v == APPROVAL_MAY;
}

static void decide(struct request *rq, bool approve)
{
	static const char *const fields[] = { "comment", NULL };
	if (!writable(rq))
		return;
	json_t *in = request_json(rq, fields);
	if (!in)
		return;
	const char *comment = json_string_value(json_object_get(in, "comment"));
	long stage, step;
	struct store *st = NULL;
	struct exec_row row;
	struct loaded_exec le;
	if (!parse_int(rq->params[1], 0, 100000, &stage) ||
	    !parse_int(rq->params[2], 0, 100000, &step)) {
		respond_error(rq, 400, "invalid-parameter", "stage and step are indexes from 0");
	} else if ((st = store_or_503(rq)) && load_exec(rq, st, &row, &le)) {
		if ((size_t)stage >= le.plan->nstages ||
		    (size_t)step >= le.plan->stages[stage].nsteps) {
			respond_error(rq, 404, "not-found", "execution %s has no step %ld/%ld",
			              row.id, stage, step);
		} else if (!(le.plan->stages[stage].steps[step].type->flags & STEP_DECISION)) {
			respond_error(rq, 409, "refused", "step \"%s\" is not a Human step",
			              le.plan->stages[stage].steps[step].name);
		} else if (!decider_may(rq, &le, (int)stage, (int)step, approve)) {
			/* answered */
		} else {
			json_t *data = decision_data(rq, (int)stage, (int)step, "api");
			if (comment)
				json_object_set_new(data, "comment", json_string(comment));
			struct strbuf err = STRBUF_INIT;
			int r = control_apply(st, row.id, approve ? "approve" : "reject", data,
			                      DECISION_WAIT_MS, &err);
			const char *what = approve ? "approved" : "rejected";
			struct loaded_exec after;
			if (approve && (r == CONTROL_DONE_BY_OWNER || r == CONTROL_DONE_HERE) &&
			    execution_load(st, row.id, &after, NULL) == 0) {
				/* minApprovals: one approval of several leaves the step waiting */
				if (after.state.steps[stage][step].status == STEP_RUNNING)
					what = "approval recorded; more approvals are needed";
				loaded_exec_release(&after);
			}
			control_answer(rq, r, what, &err);
			strbuf_release(&err);
		}
		loaded_exec_release(&le);
		exec_row_release(&row);
	}
	server_store_put(rq->srv, st);
	json_decref(in);
}

static void h_approve(struct request *rq)
{
	decide(rq, true);
}

static void h_reject(struct request *rq)
{
	decide(rq, false);
}

static void h_abort(struct request *rq)
{
	static const char *const fields[] = { "reason", NULL };
	if (!writable(rq))
		return;
	json_t *in = request_json(rq, fields);
	if (!in)
		return;
	struct store *st = store_or_503(rq);
	if (st && exists(rq, st)) {
		json_t *data =
		    json_pack("{ssssss}", "by", rq->identity, "via", "api", "address", rq->address);
		const char *reason = json_string_value(json_object_get(in, "reason"));
		if (reason)
			json_object_set_new(data, "reason", json_string(reason));
		struct strbuf err = STRBUF_INIT;
		int r = control_apply(st, rq->params[0], "abort", data, DECISION_WAIT_MS, &err);
		control_answer(rq, r, "aborted", &err);
		strbuf_release(&err);
	}
	server_store_put(rq->srv, st);
	json_decref(in);
}

struct retry_job {
	const char *id, *by, *address;
	struct strbuf err;
	int r;
};

static void do_retry(struct server *srv, void *arg)
{
	struct retry_job *j = arg;
	j->r = runtime_redrive(
	    srv->rt, j->id, json_pack("{ssssss}", "by", j->by, "via", "api", "address", j->address),
	    &j->err);
}

static void h_retry(struct request *rq)
{
	if (!writable(rq))
		return;
	json_t *in = request_json(rq, NULL);
	if (!in)
		return;
	json_decref(in);
	if (!exists_here(rq))
		return;
	struct retry_job j = { .id = rq->params[0], .by = rq->identity, .address = rq->address };
	strbuf_init(&j.err, SIZE_MAX);
	if (server_call(rq->srv, do_retry, &j) < 0)
		respond_error(rq, 503, "closing", "the server is shutting down");
	else if (j.r == SP_EBUSY)
		respond_error(rq, 409, "refused", "another steppy process runs the release: %s",
		              j.err.buf);
	else if (j.r < 0)
		respond_error(rq, 409, "refused", "%s", j.err.buf);
	else {
		answers_changed(rq->srv->answers);
		respond_json(rq, 200,
		             json_pack("{ssss}", "id", rq->params[0], "result", "retrying"));
	}
	strbuf_release(&j.err);
}

/* ---- sessions ---------------------------------------------------------------------- */

static json_t *roles_json(unsigned roles)
{
	json_t *a = json_array();
	if (roles & ROLE_VIEWER)
		json_array_append_new(a, json_string("viewer"));
	if (roles & ROLE_OPERATOR)
		json_array_append_new(a, json_string("operator"));
	if (roles & ROLE_APPROVER)
		json_array_append_new(a, json_string("approver"));
	return a;
}

static void h_whoami(struct request *rq)
{
	if (!rq->identity) {
		/* the dashboard offers the ways to sign in that this server has */
		respond_json(rq, 401,
		             json_pack("{s{ssss}so}", "error", "code", "unauthenticated", "message",
		                       "not signed in", "signIn", auth_methods_json(rq->srv)));
		return;
	}
	respond_json(rq, 200,
	             json_pack("{ssso}", "identity", rq->identity, "roles", roles_json(rq->roles)));
}

static void h_login(struct request *rq)
{
	static const char *const fields[] = { "token", NULL };
	json_t *in = request_json(rq, fields);
	if (!in)
		return;
	const char *token = json_string_value(json_object_get(in, "token"));
	const struct api_token *t = token ? server_find_token(rq->srv, token) : NULL;
	if (!server_auth_on(rq->srv)) {
		respond_json(
		    rq, 200,
		    json_pack("{ssso}", "identity", "anonymous", "roles", roles_json(rq->roles)));
	} else if (!t) {
		respond_error(rq, 401, "unauthenticated", "that token is not known");
	} else {
		bool tls = server_config(rq->srv)->tls_certificate ||
		           !strncmp(rq->srv->url, "https://", 8);
		rq->set_cookie = xstrfmt("steppy_session=%s; Path=/; HttpOnly; SameSite=Strict%s",
		                         token, tls ? "; Secure" : "");
		respond_json(
		    rq, 200,
		    json_pack("{ssso}", "identity", t->name, "roles", roles_json(t->roles)));
	}
	json_decref(in);
}

static void h_logout(struct request *rq)
{
	rq->set_cookie = xstrdup("steppy_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
	respond_json(rq, 200, json_pack("{ss}", "result", "signed out"));
}

/* ---- metrics ------------------------------------------------------------------------ */

static void count_status(const char *status, int64_t n, void *arg)
{
	json_object_set_new(arg, status, json_integer(n));
}

struct aws_counts_job {
	uint64_t calls, errors;
};

static void read_aws_counts(struct server *srv, void *arg)
{
	struct aws_counts_job *j = arg;
	const struct aws *aws = runtime_services(srv->rt)->aws;
	if (aws)
		aws_counts(aws, &j->calls, &j->errors);
}

static void h_metrics(struct request *rq)
{
	struct server *srv = rq->srv;
	struct aws_counts_job aws = { 0 };
	server_call(srv, read_aws_counts, &aws);
	struct store *st = store_or_503(rq);
	if (!st)
		return;
	json_t *counts = json_object();
	struct strbuf err = STRBUF_INIT;
	int r = store_count_by_status(st, count_status, counts, &err);
	server_store_put(srv, st);
	if (r < 0) {
		/* Zero counts would look like an empty store: say what is wrong. */
		json_decref(counts);
		respond_error(rq, 503, "store-error", "%s", err.buf);
		strbuf_release(&err);
		return;
	}
	strbuf_release(&err);
	struct strbuf out = STRBUF_INIT;
	strbuf_addstr(&out, "# HELP steppy_executions Executions in the store by status.\n"
	                    "# TYPE steppy_executions gauge\n");
	for (int i = 0; statuses[i]; i++)
		strbuf_addf(&out, "steppy_executions{status=\"%s\"} %lld\n", statuses[i],
		            (long long)json_integer_value(json_object_get(counts, statuses[i])));
	json_decref(counts);
	strbuf_addstr(&out, "# HELP steppy_step_attempts_total Step attempts ended by this "
	                    "server, by step type and outcome.\n"
	                    "# TYPE steppy_step_attempts_total counter\n");
	pthread_mutex_lock(&srv->metrics_lock);
	const char *key;
	json_t *v;
	json_object_foreach(srv->step_ends, key, v)
	{
		size_t sp = strcspn(key, " ");
		strbuf_addf(&out, "steppy_step_attempts_total{type=\"%.*s\",state=\"%s\"} %lld\n",
		            (int)sp, key, key + sp + 1, (long long)json_integer_value(v));
	}
	pthread_mutex_unlock(&srv->metrics_lock);
	strbuf_addf(&out,
	            "# HELP steppy_approval_wait_seconds Time from a Human step's start to its "
	            "decision.\n# TYPE steppy_approval_wait_seconds summary\n"
	            "steppy_approval_wait_seconds_sum %.3f\nsteppy_approval_wait_seconds_count "
	            "%llu\n",
	            (double)atomic_load(&srv->approval_wait_ms_sum) / 1000.0,
	            (unsigned long long)atomic_load(&srv->approval_wait_count));
	strbuf_addf(&out,
	            "# HELP steppy_releases_taken_over_total Releases this node took over from "
	            "other steppy processes (dead, paused or cut off).\n"
	            "# TYPE steppy_releases_taken_over_total counter\n"
	            "steppy_releases_taken_over_total %llu\n",
	            (unsigned long long)atomic_load(&srv->releases_taken_over));
	strbuf_addf(&out,
	            "# HELP steppy_aws_calls_total AWS API calls made (after retries).\n"
	            "# TYPE steppy_aws_calls_total counter\nsteppy_aws_calls_total %llu\n"
	            "# HELP steppy_aws_errors_total AWS API calls that failed.\n"
	            "# TYPE steppy_aws_errors_total counter\nsteppy_aws_errors_total %llu\n",
	            (unsigned long long)aws.calls, (unsigned long long)aws.errors);
	uint64_t kept, made;
	answers_counts(srv->answers, &kept, &made);
	strbuf_addf(&out,
	            "# HELP steppy_http_answers_total Reads answered from memory (kept while the "
	            "store was unchanged) or made from the store.\n"
	            "# TYPE steppy_http_answers_total counter\n"
	            "steppy_http_answers_total{from=\"memory\"} %llu\n"
	            "steppy_http_answers_total{from=\"store\"} %llu\n",
	            (unsigned long long)kept, (unsigned long long)made);
	strbuf_addf(&out,
	            "# HELP steppy_http_requests_total HTTP requests answered.\n"
	            "# TYPE steppy_http_requests_total counter\nsteppy_http_requests_total %llu\n"
	            "# HELP steppy_http_errors_total HTTP requests answered with 4xx or 5xx.\n"
	            "# TYPE steppy_http_errors_total counter\nsteppy_http_errors_total %llu\n",
	            (unsigned long long)atomic_load(&srv->http_requests),
	            (unsigned long long)atomic_load(&srv->http_errors));
	respond_text(rq, 200, "text/plain; version=0.0.4; charset=utf-8", out.buf, out.len);
	strbuf_release(&out);
}

const struct route api_routes[] = {
	{ "GET", "/healthz", h_health, 0 },
	{ "GET", "/metrics", h_metrics, ROLE_VIEWER },
	{ "GET", "/api/v1/session", h_whoami, 0 },
	{ "POST", "/api/v1/session", h_login, 0 },
	{ "DELETE", "/api/v1/session", h_logout, 0 },
	{ "GET", "/api/v1/executions", h_list, ROLE_VIEWER },
	{ "POST", "/api/v1/executions", h_submit, ROLE_OPERATOR },
	{ "GET", "/api/v1/stream", h_stream_all, ROLE_VIEWER },
	{ "GET", "/api/v1/executions/{}", h_get, ROLE_VIEWER },
	{ "GET", "/api/v1/executions/{}/events", h_events, ROLE_VIEWER },
	{ "GET", "/api/v1/executions/{}/stream", h_stream_one, ROLE_VIEWER },
	{ "POST", "/api/v1/executions/{}/abort", h_abort, ROLE_OPERATOR },
	{ "POST", "/api/v1/executions/{}/retry", h_retry, ROLE_OPERATOR },
	{ "POST", "/api/v1/executions/{}/steps/{}/{}/approve", h_approve, ROLE_APPROVER },
	{ "POST", "/api/v1/executions/{}/steps/{}/{}/reject", h_reject, ROLE_APPROVER },
	{ NULL, NULL, NULL, 0 },
};
