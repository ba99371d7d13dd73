/*
 * notify.h - notification channels: telling people what releases do.
 *
 * A channel is one configured destination (docs/channels.md): a Slack or
 * Microsoft Teams incoming webhook, a generic JSON webhook, email through an
 * SMTP server, an Amazon SNS topic, or a local log file. `steppy serve` sends
 * notices to channels: an approval request with the link to its approval
 * page, a Notify step's message, a release that started, succeeded or failed.
 *
 * Configuration is parsed with the plan's table-driven checks (plan/schema.h),
 * so a mistake in a channel is reported like one in a plan: file, line,
 * column, JSON pointer, "did you mean". Secrets never sit in configuration:
 * webhook URLs, SMTP passwords and header values such as Authorization can be
 * named by environment variable and are read when a notice is sent.
 *
 * Sending is asynchronous on one libuv loop: HTTP goes through the project's
 * libcurl multi layer (aws/http.h), SNS through the AWS client (aws/aws.h),
 * mail through libcurl on a thread of libuv's pool (libcurl waits for an
 * SMTP server's last answer in a blocking call). A delivery that fails for a
 * passing reason (no connection, a timeout, HTTP 408, 429 or 5xx, an SMTP
 * 4xx, a log write error) is tried again after 1 s and 4 s, three attempts
 * in all; other refusals (HTTP 4xx, SMTP 5xx) are final at once. SNS relies
 * on the AWS client's own retries and is sent once. Nothing here prints.
 */
#ifndef STEPPY_NOTIFY_NOTIFY_H
#define STEPPY_NOTIFY_NOTIFY_H

#include "aws/aws.h"
#include "plan/schema.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/*
 * What happened, in words for people. Every string is borrowed (copied by
 * notify_send) and may be NULL unless said otherwise; invalid UTF-8 is shown
 * as '?'. Long texts are cut (subject 250 bytes, message 16 KiB) and each
 * channel cuts further to what its service accepts.
 */
struct notice {
	const char *kind;    /* "approval", "notify", "started", "succeeded", "failed" ...;
	                        NULL: "notify" */
	const char *subject; /* one line; NULL or "": a title made from kind */
	const char *message; /* any number of lines */
	const char *execution_id, *plan, *environment, *stage, *step;
	const char *approval_url; /* the page to decide on (or to look at): http(s),
	                             at most 2048 bytes, else left out */
	int64_t time_ms;          /* when it happened (ms since the epoch); 0: now */
	const char *to;           /* email channels: this one address instead of the channel's
	                             "to" list (a personal approval link); other channels ignore
	                             it. An address that is not plainly one fails the delivery. */
};

struct channel; /* one parsed channel configuration; immutable */
struct notifier;
struct notify_delivery;

/*
 * Parses and checks the configuration of the channel called name, the object
 * at node (of the document v->doc). v->ptr must be the JSON pointer of node
 * ("/channels/releases"). v->bound does not matter (configuration has no
 * variables: every value is checked as it is, and no message speaks of
 * substituting variables). Every problem becomes a diagnostic in v->diags.
 *
 * Returns 0 and sets *ret (the caller frees it with channel_free), or
 * SP_EINVAL when any diagnostic was added (*ret untouched).
 */
int channel_parse(struct vctx *v, const char *name, const struct doc_node *node,
                  struct channel **ret);
/* Accepts NULL. Deliveries in flight do not need the channel any more. */
void channel_free(struct channel *c);

/* The channel's name and type ("slack", "teams", "webhook", "email", "sns", "log"). */
const char *channel_name(const struct channel *c);
const char *channel_type(const struct channel *c);

/*
 * Creates a notifier on loop. aws (borrowed, may be NULL: SNS channels then
 * fail) must outlive it.
 */
struct notifier *notifier_new(uv_loop_t *loop, struct aws *aws);
/*
 * Abandons every delivery in flight without calling back and frees the
 * notifier. Accepts NULL. May be called from a done callback. Handles close
 * asynchronously and a mail being sent is stopped by its worker thread
 * (within a second): run the loop until it has nothing left before closing
 * it.
 */
void notifier_free(struct notifier *n);

/* Waits between attempts (default 1000 and 4000 ms); for tests. */
void notifier_set_retry_delays(struct notifier *n, uint64_t first_ms, uint64_t second_ms);

/* Deliveries started and not yet done or cancelled. */
size_t notifier_in_flight(const struct notifier *n);

/*
 * Called once per delivery, from the loop (never inside notify_send, nor
 * inside curl's or the AWS client's callbacks). error is NULL when ok, else
 * one line naming the channel and saying what failed ("slack channel
 * \"releases\": HTTP 500 from hooks.slack.com: internal_error (3 attempts)");
 * valid during the call. Webhook URLs and secrets never appear in it.
 */
typedef void (*notify_done_fn)(void *arg, bool ok, const char *error);

/*
 * Sends notice to channel c. Copies what it needs from both, so either may be
 * freed as soon as this returns. Returns a handle for notify_cancel(), valid
 * until done is called. A problem known at once (an environment variable
 * that is not set) is reported through done, too, without retries.
 */
struct notify_delivery *notify_send(struct notifier *n, const struct channel *c,
                                    const struct notice *notice, notify_done_fn done, void *arg);
/* Abandons a delivery; done is not called. */
void notify_cancel(struct notify_delivery *d);

#endif
