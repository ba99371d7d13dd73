/*
 * server-internal.h - what the server's files share: the server, one
 * request and its response, and the helpers handlers use.
 */
#ifndef STEPPY_SERVER_INTERNAL_H
#define STEPPY_SERVER_INTERNAL_H

#include "core/approval.h"
#include "notify/notify.h"
#include "server/answers.h"
#include "server/server.h"
#include "store/store.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct job;
struct conn_slot;
struct request;

struct server {
	/* The configuration now in force: replaced whole by a reload (reload.c)
	 * on the loop thread; read it with server_config(). */
	const struct serve_config *cfg;
	char *store_path;
	char url[300];        /* the public URL (publicUrl, else listen_url) */
	char listen_url[300]; /* where it listens */
	struct runtime *rt;   /* loop thread only */
	uv_loop_t *loop;
	struct runtime_observer observer;
	struct MHD_Daemon *mhd;
	unsigned char secret[32]; /* signs sessions and sign-ins; new at every start */
	unsigned char
	    form_secret[32]; /* signs approval forms: random, or shared (server_set_form_key) */
	char *tls_cert, *tls_key;
	/* store connections for connection threads */
	pthread_mutex_t pool_lock;
	struct store **pool;
	size_t npool, pool_cap;
	/* jobs for the loop thread */
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_done;
	struct job *jobs;
	uv_async_t async;
	uv_timer_t adopt_timer;
	bool handles;                      /* async and adopt_timer are initialized */
	struct inbox *inbox;               /* a directory, or NULL */
	struct inbox *inbox_s3;            /* an S3 prefix, or NULL */
	struct notify_hub *notify;         /* every channel (borrowed), or NULL */
	struct notifier *notifier;         /* what every hub of the server sends with */
	struct reload_state *reload;       /* SIGHUP reloads (reload.c), or NULL */
	struct slack_replay *slack_replay; /* Slack interactions seen (slack-actions.c) */
	struct oidc *oidc;                 /* OpenID Connect sign-in, or NULL */
	struct store *loop_store;          /* the loop thread's own connection, for the inbox */
	struct answers *answers;           /* read answers kept by store version (answers.h) */
	atomic_bool closing;               /* read by stream threads without the lock */
	/* metrics */
	atomic_ullong http_requests, http_errors;
	atomic_int streams; /* live event streams open */
	atomic_ullong approval_wait_count, approval_wait_ms_sum;
	atomic_ullong releases_taken_over; /* adopted from other processes (adopt_cb) */
	pthread_mutex_t metrics_lock;
	json_t *step_ends; /* "TYPE STATE" -> attempts ended so, under metrics_lock */
	/* connection handling (server.c, "connections"): heads being read, the
	 * deadline thread, parked streams and the request workers */
	pthread_mutex_t conns_lock;
	struct conn_slot *heads, *heads_end; /* reading a request head, oldest first */
	size_t nconns;                       /* open connections, under conns_lock */
	unsigned max_conns;                  /* maxConnections, within the open file limit */
	struct request *sleepers;            /* parked streams, under conns_lock */
	bool conns_closing;                  /* no more parking, under conns_lock */
	pthread_t deadline_thread;
	bool deadline_running;
	pthread_mutex_t queue_lock;
	pthread_cond_t queue_cond;
	struct request *queue, *queue_end; /* complete requests for the workers */
	bool queue_closing;                /* workers answer 503 and stop */
	pthread_t *workers;
	size_t nworkers;
	atomic_ullong open_body_bytes; /* buffered bodies of requests without a token */
};

/* The configuration in force (any thread): one whole view, never one a
 * reload is still building; a request that reads it twice may see two. */
static inline const struct serve_config *server_config(const struct server *srv)
{
	return __atomic_load_n(&srv->cfg, __ATOMIC_ACQUIRE);
}

/* One request without a connection (the API fuzzer): what a client sends. */
struct request_input {
	const char *method, *path;
	const char *const *headers; /* name, value, name, value, ..., NULL */
	const char *const *query;   /* name, value, ..., NULL */
	const char *body;
	size_t len;
};

struct request {
	struct server *srv;
	struct MHD_Connection *conn;
	const char *method, *url;
	const struct request_input *input; /* instead of conn (the fuzzer), or NULL */
	char cookie[256];                  /* request_cookie()'s value without conn */
	char *body;
	size_t len, cap;
	size_t body_limit; /* maxBodyBytes, or less before authentication */
	bool has_body;     /* Content-Length above 0, or Transfer-Encoding */
	bool too_big;
	size_t counted_body;  /* bytes of it counted in srv->open_body_bytes */
	bool over_budget;     /* all bodies before authentication take too much */
	bool answered;        /* a worker filled the response; queue it */
	bool quick;           /* on a libmicrohttpd thread: answer only from memory */
	struct request *next; /* in srv->queue or srv->sleepers */
	int64_t wake_ms;      /* when parked: when to resume */
	/* who asks */
	const char *identity; /* token name, or "anonymous" without tokens */
	unsigned roles;
	bool by_cookie;
	char session_name[128]; /* identity of a signed session cookie */
	char address[64];
	/* path parameters matched by the route */
	char params[4][128];
	/* the response */
	unsigned status;
	char *resp;
	size_t resp_len;
	const char *content_type;
	char *location; /* for 303 redirects, or NULL */
	char *set_cookie;
	char *set_cookie_2;          /* a second Set-Cookie, or NULL */
	struct MHD_Response *stream; /* a prepared response instead (a stream, an embedded
	                              * file), with any headers of its own */
};

/* The helpers of one request and its answer, and the store pool, are in
 * respond.c; sending notices to channels in notices.c. Neither uses
 * server.c, so handlers (api.c, pages.c ...) depend on them, not on the
 * server's routing and connections. */

/* A store connection for this thread's request; give it back after. */
struct store *server_store_get(struct server *srv, struct strbuf *err);
void server_store_put(struct server *srv, struct store *st);

/* Runs fn(srv, arg) on the loop thread and waits for it. Returns 0, or -1
 * when the server is closing. */
int server_call(struct server *srv, void (*fn)(struct server *srv, void *arg), void *arg);

/* Responses. */
void respond_json(struct request *rq, unsigned status, json_t *body /* taken */);
void respond_error(struct request *rq, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void respond_text(struct request *rq, unsigned status, const char *ctype, const char *text,
                  size_t len);
/*
 * Answers a kept JSON answer (answers.h; one reference taken, given back
 * once it is sent): 200 with its bytes and its ETag, or 304 without a body
 * when the request's If-None-Match names the ETag. Sent from the answer's
 * own memory, not copied.
 */
void respond_answer(struct request *rq, struct kept_answer *a /* taken */);

/* A query parameter, header or cookie of the request, or NULL (borrowed
 * from the request). Without a connection the Cookie header is split here
 * and the value kept in rq->cookie. */
const char *request_query(struct request *rq, const char *name);
const char *request_header(struct request *rq, const char *name);
const char *request_cookie(struct request *rq, const char *name);

/* True if the request comes from a page of this server (its Origin and
 * Sec-Fetch-Site say so; Origin "null" only with Sec-Fetch-Site
 * "same-origin"), or from no browser at all (neither is sent). */
bool request_same_origin(struct request *rq);

/*
 * Who makes the request, as a decider (core/approval.h): the signed-in
 * person's name and whether they hold the approver role; or nobody (by
 * NULL, approver_role -1: the link is what lets them decide) when not
 * signed in, or on a server without tokens, where everyone is
 * "anonymous". d->by is borrowed from the configuration.
 */
void request_decider(const struct request *rq, struct approval_decider *d);

/*
 * The data of a decision made through this request, for control_apply():
 * {stage, step, by (absent for nobody), approverRole, via, address}. The
 * engine decides from "by" and "approverRole" whether it counts
 * (engine_may_decide()). The caller owns the result.
 */
json_t *decision_data(const struct request *rq, int stage, int step, const char *via);

/* Appends the names of roles (ROLE_* bits) to out, separated by sep. */
void role_names(unsigned roles, const char *sep, struct strbuf *out);

/* The JSON body as an object whose keys are all in allowed (NULL-ended);
 * else answers 400 and returns NULL. An empty body is {}. */
json_t *request_json(struct request *rq, const char *const *allowed);

/*
 * Parks a streaming connection until due_ms (wall clock): call from a content
 * reader that has nothing to send, and return 0 from it. The connection's
 * pool thread is free meanwhile. Returns false if the server is closing (then
 * end the stream instead).
 */
bool server_sleep(struct server *srv, struct request *rq, int64_t due_ms);

/*
 * Handles one request without a socket, with the checks and routes a
 * connection's request gets; for the API fuzzer. Sets *status and hands over
 * the answer in *body (NUL-terminated, *len bytes; free it).
 */
void server_handle(struct server *srv, const struct request_input *in, unsigned *status,
                   char **body, size_t *len);

/*
 * True if the request is one that may be answered on a libmicrohttpd poll
 * thread, which must not wait (api.c): a GET or HEAD of a read whose
 * handler, with rq->quick set, answers only from memory (answers.h) and
 * leaves everything else, the status included, untouched for a worker.
 */
bool api_quick(const struct request *rq);

/* Handlers: api.c, pages.c and web.c. Each answers the request. */
typedef void (*handler_fn)(struct request *rq);
struct route {
	const char *method;
	const char *pattern; /* "/api/v1/executions/{}/events": {} matches one segment */
	handler_fn fn;
	unsigned roles; /* any of these is needed; 0: open to all */
};
extern const struct route api_routes[];
extern const struct route page_routes[];
extern const struct route web_routes[];   /* the dashboard: / and /assets/NAME */
extern const struct route slack_routes[]; /* Slack's interactions (slack-actions.c) */
extern const struct route link_routes[];  /* re-issuing approval links (relink.c) */

/* The value of the Approve and Reject buttons of Slack bot channels for an attempt of a
 * Human step (struct notice's decide_ref); the caller frees it. */
char *slack_decide_ref(const char *id, int stage, int step, int attempt);

/* The observer's approval links: creates the link of a waiting Human step
 * attempt if it has none, and sends it to the step's channels. Loop thread. */
void approvals_on_events(struct server *srv, const char *id, const struct exec_state *state,
                         const struct event *events, size_t n);

/*
 * Sends a notice to channels (a list node of names; NULL: the default
 * channels). A channel that cannot be reached is recorded as a Notice in
 * the release's history while it runs, else in the server's log. Returns
 * how many channels it was sent to. Loop thread.
 */
size_t server_notify(struct server *srv, const struct doc_node *channels,
                     const struct notice *notice, int stage, int step, int attempt);
/* The same, leaving out the channels named in skip (NULL-terminated, or NULL). */
size_t server_notify_except(struct server *srv, const struct doc_node *channels,
                            const struct notice *notice, int stage, int step, int attempt,
                            const char *const *skip);

/* Lowercase hex of the n bytes at in, into out (2n + 1 bytes, NUL-ended). */
void hex_encode(const unsigned char *in, size_t n, char *out);

/*
 * A new link token (approval and personal links): 128 bits from the
 * kernel's CSPRNG as 32 hex digits, and its SHA-256, the only form the
 * store keeps. Aborts without random numbers: no link could be safe. The
 * caller wipes token when done with it.
 */
void link_token_new(char token[33], unsigned char hash[32]);

/* The notice that asks for a decision on a Human step's attempt, with its
 * link; it owns the strings it makes (subject, Slack's decide_ref). */
struct approval_notice {
	struct notice n; /* borrows from the plan, id and url given to _init */
	char *subject, *decide_ref;
};
void approval_notice_init(struct approval_notice *an, const char *id, const struct plan *plan,
                          int stage, int step, int attempt, const char *url);
void approval_notice_release(struct approval_notice *an);

/* An approval page's facts about the release: "<dt>Release</dt><dd>ID -
 * plan (environment)</dd><dt>Started by</dt>...<dt>Step</dt><dd>STAGE /
 * STEP</dd>", escaped. */
void page_release_facts(struct strbuf *out, const struct exec_row *row, const char *stage,
                        const char *step);
/* Why a link for attempt of a step (ss, of the release in state) cannot
 * decide any more - replaced, decided, expired, aborted - or NULL. */
const char *link_closed_reason(const struct exec_state *state, const struct step_state *ss,
                               int attempt);

/* The pages' HTML (pages.c): text escaped for HTML; a page's head with its
 * title; the end of a page, sent as the answer (out released); a page of one
 * paragraph. */
void html_escape(struct strbuf *out, const char *s);
void page_start(struct strbuf *out, const char *title);
void send_page(struct request *rq, unsigned status, struct strbuf *out);
void simple_page(struct request *rq, unsigned status, const char *title, const char *text);
/* The value of name in an application/x-www-form-urlencoded body (decoded;
 * caller frees), or NULL. */
char *form_value(const char *body, const char *name);

/* Sends notice to the channel called name, recording a failure as a Notice
 * of the release (see server_notify()). Loop thread. */
void server_notify_one(struct server *srv, const char *name, const struct notice *notice, int stage,
                       int step, int attempt);

/*
 * Personal approval links (personal.c): for each person a Human step's
 * approvers name (by name or group, through the people directory), a link
 * bound to them, sent to their email address through the step's email
 * channels (its channels, else the default ones). general is the step's
 * general notice (its link is replaced). Returns the names of the email
 * channels that carried at least one (NULL-terminated; caller frees the
 * array, not the names) and sets *ret_people to the names of the people who
 * got a link. Loop thread.
 */
const char **personal_links_send(struct server *srv, const char *id, const struct plan *plan,
                                 int stage, int step, int attempt, const struct notice *general,
                                 json_t **ret_people);
extern const struct route personal_routes[];

/* The Set-Cookie value of a session (Secure when served over https). */
char *session_cookie(const struct server *srv, const char *token);

/* reload.c: closes the SIGHUP handle and frees the channel hubs reloads
 * replaced (before the loop's last run in server_free()); then frees the
 * configurations reloads loaded (at its end). Both accept srv->reload NULL. */
void reload_stop(struct server *srv);
void reload_release(struct server *srv);

/* Checks the SHA-256 of token against the configured tokens. */
const struct api_token *server_find_token(const struct server *srv, const char *token);

#endif
