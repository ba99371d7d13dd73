/*
 * notify.h - notification channels: telling people what releases do.
 *
 * A channel is one configured destination (docs/channels.md): a Slack or
 * Microsoft Teams incoming webhook, a generic JSON webhook, email through an
 * SMTP server, an Amazon SNS topic, or a local log file. Each kind is one
 * file (channel-type.h, the table in channels.c). Notices go to channels
 * through a hub (hub.h): an approval request with the link to its approval
 * page, a Notify step's message, a release that started, succeeded or failed.
 *
 * Configuration is parsed with the plan's table-driven checks (plan/schema.h),
 * so a mistake in a channel is reported like one in a plan: file, line,
 * column, JSON pointer, "did you mean". Secrets never sit in configuration:
 * webhook URLs, SMTP passwords and header values such as Authorization can be
 * named by environment variable and are read when a notice is sent.
 *
 * Sending is asynchronous on one libuv loop: HTTP goes through the project's
 * libcurl multi layer (http/http.h), SNS through the AWS client (aws/aws.h),
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
	/* Slack bot channels with a signing secret: the value of the Approve and Reject
	 * buttons, which comes back in Slack's interaction request (at most 1000 bytes of
	 * printable ASCII, else no buttons); NULL: no buttons */
	const char *decide_ref;
	/* What became of the request ("Approved by alice"), one line shown after the facts;
	 * NULL while nothing has */
	const char *outcome;
	const char *to; /* email channels: this one address instead of the channel's
	                   "to" list (a personal approval link); other channels ignore
	                   it. An address that is not plainly one fails the delivery. */
};

/*
 * The built-in "terminal" channel's way out (notify/hub.h): a Notify step's
 * text ("SUBJECT: MESSAGE", or the message) for the release execution_id
 * (may be NULL), sent at time_ms. Called from the loop; text valid during
 * the call.
 */
typedef void (*notify_terminal_fn)(void *arg, const char *execution_id, int64_t time_ms,
                                   const char *text);

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

/*
 * Checks the channels that the Human and Notify steps of the plan document
 * doc name against a server's channels (n of them; channels may be NULL when
 * n is 0): each name that is not one of them is an error in diags (file,
 * line, column, JSON pointer of the name, "did you mean"). where says whose
 * channels they are in messages ("this server", "serve.yaml"). Notify steps
 * may also name the built-in "terminal" and "log" and SNS topic ARNs. Names
 * still holding a ${...} reference are left for the bound document. Returns
 * the number of errors added.
 */
size_t channels_check_plan(struct channel *const *channels, size_t n, const struct doc *doc,
                           const char *where, struct diag_list *diags);

/* The channel's name and type ("slack", "teams", "webhook", "email", "sns", "log" ...). */
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

/*
 * Slack bot channels (docs/channels.md): whether c posts as a bot, and
 * whether it also takes decisions (it has a signing secret to verify
 * Slack's interaction requests with).
 */
bool channel_slack_bot(const struct channel *c);
bool channel_slack_interactive(const struct channel *c);

/*
 * c's signing secret, read now from its environment variable or file: a new
 * string the caller wipes (explicit_bzero) and frees. NULL when c has none
 * or it cannot be read (why in err, never the secret).
 */
char *channel_slack_signing_secret(const struct channel *c, struct strbuf *err);

/*
 * Slack bot channel c: replaces the message at ts in the conversation
 * slack_channel with notice (chat.update), as notify_send() sends, with
 * retries. Every argument is copied.
 */
struct notify_delivery *notify_slack_update(struct notifier *n, const struct channel *c,
                                            const struct notice *notice, const char *slack_channel,
                                            const char *ts, notify_done_fn done, void *arg);
/* Slack bot channel c: a message in slack_channel that only user sees (chat.postEphemeral). */
struct notify_delivery *notify_slack_ephemeral(struct notifier *n, const struct channel *c,
                                               const char *slack_channel, const char *user,
                                               const char *text, notify_done_fn done, void *arg);

#endif
