/*
 * notify-internal.h - what the files of src/notify/ share: the parsed channel
 * (channel.c), the notice as the formatters see it, and the formatters
 * (format.c), which turn a notice into each service's payload. The
 * formatters are pure functions, so tests check payloads byte for byte.
 */
#ifndef STEPPY_NOTIFY_INTERNAL_H
#define STEPPY_NOTIFY_INTERNAL_H

#include "notify/notify.h"
#include "util/strbuf.h"

enum channel_kind {
	CHANNEL_SLACK,
	CHANNEL_TEAMS,
	CHANNEL_WEBHOOK,
	CHANNEL_EMAIL,
	CHANNEL_SNS,
	CHANNEL_LOG
};

/* An extra HTTP header of a webhook channel. */
struct channel_header {
	char *name;
	char *value;   /* the value, or the environment variable's name when from_env */
	bool from_env; /* from "headersFromEnv": read when a notice is sent */
};

/* Fields unused by a type are NULL, 0 or false. Every string is owned. */
struct channel {
	char *name;
	enum channel_kind kind;
	long timeout_ms; /* whole delivery attempt */
	/* slack (webhook mode), teams, webhook: exactly one of url and url_env; email: url */
	char *url;
	char *url_env;
	/* slack, bot mode (instead of url): the bot token from exactly one of token_env and
	 * token_file, the conversation to post to, the Web API's base URL (no trailing
	 * slash); with a signing secret (from signing_env or signing_file, or neither),
	 * approval requests carry Approve and Reject buttons */
	char *token_env, *token_file;
	char *slack_channel;
	char *api_url;
	char *signing_env, *signing_file;
	struct channel_header *headers; /* webhook */
	size_t nheaders;
	/* email */
	bool starttls;      /* smtp:// upgraded with STARTTLS, required */
	char *username;     /* with password_env, or both NULL */
	char *password_env; /* the environment variable holding the password */
	char *from;         /* bare address */
	char **to;          /* bare addresses, nto >= 1 */
	size_t nto;
	/* sns */
	char *topic_arn;
	char *region; /* from the ARN */
	char *role_arn;
	/* log */
	char *path;
};

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

/* Fills t from n (now when n->time_ms is 0). */
void notice_text_init(struct notice_text *t, const struct notice *n, int64_t now_ms);
void notice_text_release(struct notice_text *t);

/* The label of the link: "Review and decide" for approvals, else "Open in steppy". */
const char *notice_link_label(const struct notice_text *t);

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
/* A whole RFC 5322 message (CRLF lines, quoted-printable body) from c->from
 * to c->to; message_id without angle brackets. Not dot-stuffed: libcurl does
 * that while sending. */
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

#endif
