/*
 * hub.h - every channel a steppy process sends to, by name: the channels of
 * a server's configuration with its default channels, and the built-in
 * channels of Notify steps: "terminal" (the live view of `steppy run`,
 * through a callback the command gives), "log" (notifications.log next to
 * the store) and SNS topics named by their ARN. `steppy run` and `steppy
 * serve` both build one; the Notify step's runner and the Human step's
 * approval links send through it. One notifier does the sending, with the
 * one retry rule of every channel (notify.h). Loop thread only, but for
 * the lookups that say "any thread".
 */
#ifndef STEPPY_NOTIFY_HUB_H
#define STEPPY_NOTIFY_HUB_H

#include "notify/notify.h"
#include "plan/doc.h"

struct notify_hub;
struct notify_send; /* one notice on its way to one channel of the hub */

struct notify_hub_options {
	struct channel *const *channels; /* configured (borrowed: must outlive the hub) */
	size_t nchannels;
	const char *const *defaults; /* names of the default channels (borrowed) */
	size_t ndefaults;
	const char *log_path; /* the built-in "log" channel's file (copied); NULL: none */
	/* the built-in "terminal" channel: NULL shows nothing (and counts as delivered) */
	notify_terminal_fn terminal;
	void *terminal_arg;
	/* The notifier to send with (borrowed: must outlive the hub), so that the
	 * hubs a server makes at each reload share one; NULL: the hub makes its own. */
	struct notifier *notifier;
};

/* A new hub on loop; aws (borrowed, may be NULL: SNS then fails) must outlive it. */
struct notify_hub *notify_hub_new(uv_loop_t *loop, struct aws *aws,
                                  const struct notify_hub_options *options);
/*
 * Accepts NULL. Every send still in flight is reported to its callback
 * once, with cancelled set (nothing more will be tried), so that its owner
 * may free what it holds; then the hub is freed. Handles close
 * asynchronously: run the loop before closing it.
 */
void notify_hub_free(struct notify_hub *h);

/* How one send went. Valid during the callback. */
struct notify_result {
	const char *channel; /* the name it was sent to */
	bool ok;
	bool unknown;        /* no such channel (only from notify_hub_fanout) */
	bool cancelled;      /* the hub was freed first */
	const char *error;   /* when not ok: one line naming the channel, no secrets */
	const char *receipt; /* when ok: what the service answered worth keeping (SNS's
	                        MessageId), or NULL */
};

/* Called once per send, from the loop, never inside the call that sent. */
typedef void (*notify_result_fn)(void *arg, const struct notify_result *r);

/*
 * Sends notice to the channel called name: configured, built-in or an SNS
 * topic ARN. Returns the send (for notify_hub_cancel(), valid until done is
 * called), or NULL when the hub has no such channel (done is not called).
 */
struct notify_send *notify_hub_send(struct notify_hub *h, const char *name,
                                    const struct notice *notice, notify_result_fn done, void *arg);
/* Abandons a send; its done is not called. */
void notify_hub_cancel(struct notify_send *s);

/*
 * Sends notice to each channel of list (an array node of names; NULL: the
 * default channels) but those named in skip (NULL-terminated, or NULL).
 * done is called once per name, with unknown set for a name the hub does
 * not have. Returns how many names it was called for (0: done is never
 * called).
 */
size_t notify_hub_fanout(struct notify_hub *h, const struct doc_node *list, const char *const *skip,
                         const struct notice *notice, notify_result_fn done, void *arg);

/* Whether name is a channel of the hub (configured, built-in, or an SNS topic ARN). */
bool notify_hub_has(const struct notify_hub *h, const char *name);

/* The configured channel called name (borrowed), or NULL. Any thread: they never change. */
const struct channel *notify_hub_find(const struct notify_hub *h, const char *name);

/* The configured channels (borrowed) and how many. Any thread. */
struct channel *const *notify_hub_channels(const struct notify_hub *h, size_t *ret_n);

/* Whether nothing the hub sent is still on its way (it may be freed without
 * cancelling anything). Loop thread. */
bool notify_hub_idle(const struct notify_hub *h);

/* The notifier the hub sends with, for notify_slack_update() and the like. Loop thread. */
struct notifier *notify_hub_notifier(struct notify_hub *h);
/* The type of the configured channel called name ("email", "slack" ...), or NULL. */
const char *notify_hub_type(const struct notify_hub *h, const char *name);

/* The default channels' names (borrowed) and how many. */
const char *const *notify_hub_defaults(const struct notify_hub *h, size_t *ret_n);

#endif
