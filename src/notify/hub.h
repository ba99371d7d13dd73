/*
 * hub.h - the notification channels a server has: the parsed channels of
 * its configuration, its default channels, and one notifier to send with.
 * Steps and the server send by channel name. Loop thread only.
 */
#ifndef STEPPY_NOTIFY_HUB_H
#define STEPPY_NOTIFY_HUB_H

#include "notify/notify.h"

struct notify_hub;

/* Borrows channels (n of them) and defaults; they must outlive the hub. */
struct notify_hub *notify_hub_new(uv_loop_t *loop, struct aws *aws, struct channel *const *channels,
                                  size_t n, const char *const *defaults, size_t ndefaults);
/* Accepts NULL; deliveries in flight are abandoned. */
void notify_hub_free(struct notify_hub *h);

/* Sends notice to the channel called name: 0, or -1 if there is none. */
int notify_hub_send(struct notify_hub *h, const char *name, const struct notice *notice,
                    notify_done_fn done, void *arg);

/* Whether a channel called name exists. */
bool notify_hub_has(const struct notify_hub *h, const char *name);

/* The channel called name (borrowed), or NULL. Any thread: channels never change. */
const struct channel *notify_hub_find(const struct notify_hub *h, const char *name);

/* The channels (borrowed) and how many. Any thread. */
struct channel *const *notify_hub_channels(const struct notify_hub *h, size_t *ret_n);

/* The notifier the hub sends with, for notify_slack_update() and the like. Loop thread. */
struct notifier *notify_hub_notifier(struct notify_hub *h);
/* The type of the channel called name ("email", "slack" ...), or NULL if there is none. */
const char *notify_hub_type(const struct notify_hub *h, const char *name);

/* The default channels' names (borrowed) and how many. */
const char *const *notify_hub_defaults(const struct notify_hub *h, size_t *ret_n);

#endif
