/*
 * notify-internal.h - what the files of src/notify/ share beyond the channel
 * interface (channel-type.h): the configs of the built-in kinds (read by
 * their unit tests), their formatters, which turn a notice into each
 * service's payload, and the hub's constructors of built-in channels. The
 * formatters are pure functions, so tests check payloads byte for byte.
 */
#ifndef STEPPY_NOTIFY_INTERNAL_H
#define STEPPY_NOTIFY_INTERNAL_H

#include "notify/channel-type.h"

/* The kinds (one file each, listed in channels.c). */
extern const struct channel_type channel_slack, channel_teams, channel_webhook, channel_email,
    channel_sns, channel_log, channel_terminal;

/* slack: an incoming webhook (hook), or a bot: the token from exactly one of token_env and
 * token_file, the conversation to post to, the Web API's base URL (no trailing slash); with
 * a signing secret (from signing_env or signing_file, or neither), approval requests carry
 * Approve and Reject buttons. Strings owned, NULL when not given. */
struct slack_config {
	struct hook_config hook;
	char *token_env, *token_file;
	char *slack_channel;
	char *api_url;
	char *signing_env, *signing_file;
};

struct email_config {
	char *url;          /* smtp:// or smtps:// */
	bool starttls;      /* smtp:// upgraded with STARTTLS, required */
	char *username;     /* with password_env, or both NULL */
	char *password_env; /* the environment variable holding the password */
	char *from;         /* bare address */
	char **to;          /* bare addresses, nto >= 1 */
	size_t nto;
};

struct sns_config {
	char *topic_arn;
	char *region; /* from the ARN; NULL: the default region */
	char *role_arn;
	bool plain; /* a topic a Notify step names: the message as written, the subject
	               only when given (no facts, no title made up) */
};

struct log_config {
	char *path;
	bool local; /* the "log" channel of Notify steps: "TIME ID STEP: [SUBJECT] MESSAGE" */
};

/* Built-in channels of the hub. */
struct channel *log_channel_new(const char *name, const char *path);
struct channel *terminal_channel_new(const char *name, notify_terminal_fn fn, void *arg);
/* The topic a Notify step names by its ARN ("arn:...:sns:..."). */
struct channel *sns_topic_channel_new(const char *arn);

/* Fills t from n (now when n->time_ms is 0). */
void notice_text_init(struct notice_text *t, const struct notice *n, int64_t now_ms);
void notice_text_release(struct notice_text *t);

/* Payloads; the caller frees the JSON texts. */
char *format_slack(const struct notice_text *t);
/* Slack's Web API (chat.postMessage; chat.update when ts is given) to the conversation
 * slack_channel; buttons: Approve and Reject buttons carrying t->decide_ref, when set. */
char *format_slack_api(const struct notice_text *t, const char *slack_channel, const char *ts,
                       bool buttons);
char *format_teams(const struct notice_text *t);
char *format_webhook(const struct notice_text *t);
/* The plain-text body of mail and SNS: message, the facts one per line, the
 * link; lines end with nl ("\n" or "\r\n"). */
void format_text(const struct notice_text *t, const char *nl, struct strbuf *out);
/* A whole RFC 5322 message (CRLF lines, quoted-printable body) from the email
 * channel c's from to its to; message_id without angle brackets. Not
 * dot-stuffed: libcurl does that while sending. */
void format_email(const struct notice_text *t, const struct channel *c, const char *message_id,
                  struct strbuf *out);
/* SNS's Subject: one line of fewer than 100 characters, no control characters. */
void format_sns_subject(const struct notice_text *t, struct strbuf *out);
/* One line of the log channel, with its newline. */
void format_log_line(const struct notice_text *t, struct strbuf *out);

/* Encodings, exposed for tests. */
void qp_encode(const char *text, size_t len, struct strbuf *out); /* CRLF lines in and out */
/* A header value: as it is when printable ASCII, else RFC 2047 encoded words
 * (UTF-8, base64) folded onto continuation lines. */
void mime_header_encode(const char *text, struct strbuf *out);

/*
 * Deliveries for other requests than a notice (Slack's chat.update): a new
 * delivery to c, linked in n, not started; then delivery_start() with
 * req filled (ready), or with the error (taken) that fails it untried.
 */
struct notify_delivery *delivery_new(struct notifier *n, const struct channel *c,
                                     notify_done_fn done, void *arg);
struct notify_delivery *delivery_start(struct notify_delivery *d, bool ready, char *error);

/* The notifier's own result of a delivery, for the hub: as notify_done_fn, with what
 * the service answered that is worth keeping (SNS's MessageId), or NULL. */
typedef void (*notify_result_done_fn)(void *arg, bool ok, const char *error, const char *receipt);
struct notify_delivery *notify_send_full(struct notifier *n, const struct channel *c,
                                         const struct notice *notice, notify_result_done_fn done,
                                         void *arg);
/* A delivery that fails at once with error (no channel): reported like the rest. */
struct notify_delivery *notify_send_error(struct notifier *n, const char *error,
                                          notify_result_done_fn done, void *arg);

#endif
