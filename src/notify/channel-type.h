/*
 * channel-type.h - the interface every kind of notification channel
 * implements (docs/channels.md): one table of hooks per kind.
 *
 * A channel kind is one file in src/notify/ (channel-<kind>.c) exporting one
 * const struct channel_type, listed in the table of channels.c. The rest of
 * steppy knows channels only through this table: the configuration reader
 * finds a kind by its "type", checks its fields with the plan's table-driven
 * checks (plan/schema.h) and its check hook, and keeps what its parse hook
 * builds; a delivery turns a notice into the kind's request with its format
 * hook and makes each attempt with its send hook. Retries, back-off, time
 * limits, cancellation and reporting are the notifier's (notify.c), the
 * same for every kind: a send hook only reports how its attempt went with
 * notify_attempt_done().
 *
 * Adding a channel:
 *   1. Write src/notify/channel-<kind>.c: its field table, check (what the
 *      table cannot say), parse (a config struct of its own), release, format
 *      (the payload, from struct notice_text: texts already cut and cleaned)
 *      and send (one attempt, through notify_http_post(), notify_aws_query(),
 *      notify_work() or at once). A webhook-like kind reuses hook_fields and
 *      hook_request() (or hook_prepare()).
 *   2. Add one row X(<kind>) to CHANNEL_KINDS in src/notify/channels.c.
 *   3. Document its keys in docs/channels.md; test its format and its
 *      parse errors in tests/unit/test-notify*.c.
 * Nothing else names a kind: `steppy serve`'s configuration, validation of
 * plans, the hub and the Notify and Human steps take it from the table
 * (tests/extend/channel-xyz.c proves it).
 */
#ifndef STEPPY_NOTIFY_CHANNEL_TYPE_H
#define STEPPY_NOTIFY_CHANNEL_TYPE_H

#include "aws/aws.h"
#include "http/http.h"
#include "notify/notify.h"
#include "plan/schema.h"
#include "util/strbuf.h"

#include <jansson.h>

/*
 * A notice copied for sending: valid UTF-8, capped, control characters out
 * of the one-line fields. kind, title and message are never NULL (message
 * may be ""); the others are NULL when absent or empty.
 */
struct notice_text {
	char *kind;
	char *title;   /* the subject, or one made from kind and plan */
	char *subject; /* as given, or NULL */
	char *message;
	char *execution_id, *plan, *environment, *stage, *step;
	char *url;
	int64_t time_ms;
	char *decide_ref; /* printable ASCII, at most 1000 bytes, or NULL */
	char *outcome;    /* one line, or NULL */
	char *to;         /* one recipient instead of the channel's (email), or NULL */
	bool bad_to;      /* a recipient was given that is not a plain address */
};

/* One parsed channel: its kind's config is the kind's own. Immutable. */
struct channel {
	char *name;
	const struct channel_type *type;
	long timeout_ms; /* one attempt */
	char *what;      /* "slack channel \"releases\"", the start of its errors; NULL: none */
	void *config;    /* what type->parse built (owned, freed with type->release); may be NULL */
};

/*
 * What a delivery sends, made by the format hook from the notice so that
 * the channel and the notice may go away. Every pointer is owned by the
 * delivery; url and headers may hold secrets and are wiped when freed.
 */
struct channel_request {
	char *body; /* the payload: JSON, a mail, a message, a line; NUL-terminated */
	size_t len;
	char *url;      /* HTTP or SMTP: where it goes, or NULL */
	char *host;     /* for messages: never the whole URL, which may be a secret */
	char **headers; /* "Name: value" lines of an HTTP request */
	size_t nheaders;
	void *data;                 /* anything else the kind's send needs, or NULL */
	void (*data_free)(void *p); /* frees data (NULL: free()) */
};

#define CHANNEL_BUILTIN     (1u << 0) /* made by the hub, never a "type" of the configuration */
#define CHANNEL_ONE_ATTEMPT (1u << 1) /* never tried again here (SNS: the AWS client retries) */

struct channel_type {
	const char *name; /* the "type" of the configuration: "slack" */
	const char *what; /* in messages: "a slack channel" */
	unsigned flags;   /* CHANNEL_* */
	long timeout_ms;  /* one attempt's time limit unless timeoutSeconds says; 0: 10 s */
	/* its keys besides "type" and "timeoutSeconds": tables for schema_check_object(),
	 * NULL-terminated; NULL: none */
	const struct field_spec *const *fields;
	/* Checks what the tables cannot say (two keys that exclude each other); what is
	 * "a slack channel" for messages. Runs after the tables' checks. May be NULL. */
	void (*check)(struct vctx *v, const struct doc_node *node, const char *what);
	/* Builds the kind's config from a node that passed every check; NULL when the kind
	 * has none. May be NULL (no config). */
	void *(*parse)(const struct doc_node *node);
	/* Frees what parse built. Accepts NULL. May be NULL (free()). */
	void (*release)(void *config);
	/* Fills req for sending t through c (secrets read from the environment now).
	 * Returns 0, or -1 with *ret_error (taken): the delivery fails at once, untried. */
	int (*format)(const struct channel *c, const struct notice_text *t,
	              struct channel_request *req, char **ret_error);
	/* Makes one attempt with the request of d; reports with notify_attempt_done(), at
	 * once or later from the loop. */
	void (*send)(struct notify_delivery *d);
};

/* The table (channels.c): every kind, NULL-terminated. */
extern const struct channel_type *const channel_types[];

/* The kind called name among those a configuration may name, or NULL. */
const struct channel_type *channel_type_find(const char *name);

/* A channel made by code (the hub's built-in ones): takes config. */
struct channel *channel_new(const char *name, const struct channel_type *type, void *config);

/* ---- for check hooks and field tables: checks of single values ---------------------------- */

bool channel_has_control(const char *s);
/* One line (no control characters) of at most 4096 bytes. */
void channel_check_one_line(struct vctx *v, const struct doc_node *value);
/* The name of an environment variable. */
void channel_check_env_var(struct vctx *v, const struct doc_node *value);
/* "scheme://authority..." for one of schemes ("https://"), no credentials in it (instead:
 * where they go); false after reporting "\"...\" is not WHAT". */
bool channel_check_url(struct vctx *v, const struct doc_node *value, const char *const *schemes,
                       const char *what, const char *instead);

/* ---- for send hooks: the attempt in flight ------------------------------------------------- */

/* The request format made (its data may be changed by the kind: one attempt at a time). */
struct channel_request *notify_request(struct notify_delivery *d);
/* The limit of one attempt, in ms. */
long notify_timeout_ms(const struct notify_delivery *d);

/*
 * Reports how the attempt went: ok, or an error (taken; one line, no
 * secrets) that is worth trying again after at least min_delay_ms when
 * retryable (no connection, a timeout, the service's passing trouble). The
 * notifier decides whether and when to try again (1 s, 4 s: three attempts,
 * or one for CHANNEL_ONE_ATTEMPT kinds). Call once per attempt.
 */
void notify_attempt_done(struct notify_delivery *d, bool ok, char *error, bool retryable,
                         uint64_t min_delay_ms);
/* Something the service answered that callers may keep (SNS's MessageId); copied. */
void notify_set_receipt(struct notify_delivery *d, const char *receipt);

/* A 2xx answer of an HTTP service that says more in its body (Slack's Web API): calls
 * notify_attempt_done(). */
typedef void (*notify_answer_fn)(struct notify_delivery *d, const struct http_response *res);
/*
 * POSTs the request's body as JSON (Content-Type: application/json;
 * charset=utf-8, User-Agent: steppy, the request's headers) to its url.
 * No answer, 408, 429 (waiting its Retry-After, at most 60 s) and 5xx are
 * worth trying again; other non-2xx answers are final; a 2xx is success, or
 * goes to answer when given.
 */
void notify_http_post(struct notify_delivery *d, notify_answer_fn answer);

/* A send hook: notify_http_post() of the request, any 2xx answer is success. */
void notify_http_send(struct notify_delivery *d);

/* Called with the AWS client's answer (res->error_code NULL on success). */
typedef void (*notify_aws_fn)(struct notify_delivery *d, const struct aws_result *res);
/* An AWS query-protocol call (aws_query_call(); params taken). Without an AWS client the
 * attempt fails at once. */
void notify_aws_query(struct notify_delivery *d, const struct aws_target *t, const char *action,
                      const char *version, json_t *params, notify_aws_fn done);

/*
 * Runs work on a thread of libuv's pool (a blocking call, such as libcurl's
 * SMTP), then after on the loop with the uv status (negative: it did not
 * run). work touches only the request; notify_aborted() tells it the
 * delivery was cancelled meanwhile and it should stop.
 */
void notify_work(struct notify_delivery *d, void (*work)(struct notify_delivery *d),
                 void (*after)(struct notify_delivery *d, int status));
bool notify_aborted(struct notify_delivery *d);

/* ---- for format hooks: shared texts and payloads ------------------------------------------- */

/* The label of the link: "Review and decide" for approvals, else "Open in steppy". */
const char *notice_link_label(const struct notice_text *t);
/* The facts of a notice (Release, Plan, Environment, Stage, Step) that it has, as
 * label/value pairs; returns how many (at most 5). */
size_t notice_facts(const struct notice_text *t, const char *labels[5], const char *values[5]);
/* Appends s cut to max_chars characters (an ellipsis marks the cut). */
void add_chars(struct strbuf *out, const char *s, size_t max_chars);
/* Compact JSON of j, in insertion order (j released); the caller frees it. */
char *json_dump_compact(json_t *j);
/* A jansson string of sb's text; sb is emptied. */
json_t *json_take_string(struct strbuf *sb);

/* A secret from an environment variable or else a file (one line; surrounding blanks
 * dropped), or NULL with why in *error (naming the variable or file, never the value). */
char *read_secret(const char *env, const char *file, const char *what, char **error);
/* The host of url (for messages), or NULL unless its scheme is one of schemes. */
char *url_host(const char *url, const char *const *schemes);
/* Printable text of at most 200 bytes from an answer (trailing blanks dropped), or NULL. */
char *text_snippet(const char *body, size_t len);
/* Frees s after overwriting it (a secret). Accepts NULL. */
void wipe(char *s);

/* ---- webhook-like kinds: a URL from "url" or "urlEnv", extra headers --------------------- */

struct channel_header {
	char *name;
	char *value;   /* the value, or the environment variable's name when from_env */
	bool from_env; /* from "headersFromEnv": read when a notice is sent */
};

struct hook_config {
	char *url, *url_env; /* exactly one (slack in bot mode: neither) */
	struct channel_header *headers;
	size_t nheaders;
};

/* "url" (http or https, no credentials) and "urlEnv". */
extern const struct field_spec hook_fields[];
/* Reports "WHAT needs "a" or "b"" or "give "a" or "b", not both". */
void check_one_of(struct vctx *v, const struct doc_node *node, const char *what, const char *a,
                  const char *b);
/* Fills h from node's url, urlEnv, headers and headersFromEnv. */
void hook_parse(struct hook_config *h, const struct doc_node *node);
void hook_release(struct hook_config *h);
/* The same as parse and release hooks of a kind whose config is a struct hook_config. */
void *hook_config_new(const struct doc_node *node);
void hook_config_free(void *config);
/* A check hook: "url" or "urlEnv", one of them. */
void hook_check(struct vctx *v, const struct doc_node *node, const char *what);
/* req's url (read from the environment now), host and headers from h; -1 with *error. */
int hook_prepare(const struct hook_config *h, struct channel_request *req, char **error);
/* hook_prepare(), and body (taken) as the request's payload. */
int hook_request(const struct hook_config *c, char *body, struct channel_request *req,
                 char **error);
/* An owned copy of the string at key of node, or NULL. */
char *node_string(const struct doc_node *node, const char *key);

#endif
