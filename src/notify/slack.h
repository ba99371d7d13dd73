/*
 * slack.h - what comes back from Slack: interaction requests (a person
 * clicked Approve or Reject on a message of a Slack bot channel).
 *
 * Slack signs each request it sends with the app's signing secret:
 * X-Slack-Signature is "v0=" and the hex HMAC-SHA256 of "v0:" + the
 * X-Slack-Request-Timestamp header + ":" + the raw body. A request is
 * accepted only with that signature (compared in constant time), a
 * timestamp within 5 minutes of now, and a signature not seen before (a
 * replay within the window). The body is a form with one field, payload,
 * holding the interaction as JSON; slack_action_parse() takes from it only
 * what steppy uses. Everything here is pure but for the replay memory,
 * which is safe to share between threads. Nothing prints.
 */
#ifndef STEPPY_NOTIFY_SLACK_H
#define STEPPY_NOTIFY_SLACK_H

#include "util/strbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLACK_MAX_SKEW_S 300 /* how far a request's timestamp may be from now */

/*
 * Checks a request's signature against secret. timestamp and signature are
 * the headers' values (NULL when absent); now_s is the time in seconds.
 * Returns 0 when valid, else SP_EINVAL with *ret_why (static text): a header
 * missing or malformed, a timestamp more than SLACK_MAX_SKEW_S away from now
 * (checked first, whatever the signature), or a wrong signature.
 */
int slack_signature_check(const char *secret, const char *timestamp, const char *body, size_t len,
                          const char *signature, int64_t now_s, const char **ret_why);

/* Signatures seen in the last window, to refuse replays. Thread-safe. */
struct slack_replay;
struct slack_replay *slack_replay_new(void);
void slack_replay_free(struct slack_replay *r); /* accepts NULL */
/*
 * Records signature (of a request whose timestamp is ts) and returns false,
 * or returns true if it was seen already. Entries older than twice the
 * window are forgotten; at most 100,000 are kept (the oldest go first; they
 * are stale by then unless under a flood, which the window also refuses).
 */
bool slack_replay_seen(struct slack_replay *r, const char *signature, int64_t ts, int64_t now_s);

/* What steppy uses of a block_actions interaction; every string owned, NULL when absent. */
struct slack_action {
	char *action_id;  /* "steppy-approve", "steppy-reject", "steppy-open" ... */
	char *value;      /* the button's value */
	char *user_id;    /* who clicked (U0123ABCD) */
	char *team_id;    /* their workspace */
	char *channel_id; /* the conversation of the message */
	char *message_ts; /* the message's timestamp id */
	char *link_url;   /* the url of the message's "steppy-open" button, if any */
};

/*
 * Reads an interaction request's body (application/x-www-form-urlencoded,
 * payload=JSON). Returns 0 and fills out, or SP_EINVAL (why in err) for a
 * body that is not a block_actions interaction with one action and a user.
 * Release out with slack_action_release() either way.
 */
int slack_action_parse(const char *body, size_t len, struct slack_action *out, struct strbuf *err);
void slack_action_release(struct slack_action *a);

/*
 * The value of field name in an application/x-www-form-urlencoded body,
 * decoded (a new string; "+" is a space, %XX a byte), or NULL when absent or
 * holding a malformed escape or a NUL byte.
 */
char *form_field(const char *body, size_t len, const char *name);

#endif
