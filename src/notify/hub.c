/*
 * hub.c - a server's channels by name (see hub.h).
 */
#include "notify/hub.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

struct notify_hub {
	struct notifier *notifier;
	struct channel *const *channels;
	size_t n;
	const char *const *defaults;
	size_t ndefaults;
};

struct notify_hub *notify_hub_new(uv_loop_t *loop, struct aws *aws, struct channel *const *channels,
                                  size_t n, const char *const *defaults, size_t ndefaults)
{
	struct notify_hub *h = xcalloc(1, sizeof(*h));
	h->notifier = notifier_new(loop, aws);
	h->channels = channels;
	h->n = n;
	h->defaults = defaults;
	h->ndefaults = ndefaults;
	return h;
}

void notify_hub_free(struct notify_hub *h)
{
	if (!h)
		return;
	notifier_free(h->notifier);
	free(h);
}

int notify_hub_send(struct notify_hub *h, const char *name, const struct notice *notice,
                    notify_done_fn done, void *arg)
{
	for (size_t i = 0; h && i < h->n; i++)
		if (!strcmp(channel_name(h->channels[i]), name)) {
			notify_send(h->notifier, h->channels[i], notice, done, arg);
			return 0;
		}
	return -1;
}

const char *const *notify_hub_defaults(const struct notify_hub *h, size_t *ret_n)
{
	*ret_n = h ? h->ndefaults : 0;
	return h ? h->defaults : NULL;
}

const struct channel *notify_hub_find(const struct notify_hub *h, const char *name)
{
	for (size_t i = 0; h && i < h->n; i++)
		if (!strcmp(channel_name(h->channels[i]), name))
			return h->channels[i];
	return NULL;
}

bool notify_hub_has(const struct notify_hub *h, const char *name)
{
	return notify_hub_find(h, name) != NULL;
}

struct channel *const *notify_hub_channels(const struct notify_hub *h, size_t *ret_n)
{
	*ret_n = h ? h->n : 0;
	return h ? h->channels : NULL;
}

struct notifier *notify_hub_notifier(struct notify_hub *h)
{
	return h ? h->notifier : NULL;
}

const char *notify_hub_type(const struct notify_hub *h, const char *name)
{
	for (size_t i = 0; h && i < h->n; i++)
		if (!strcmp(channel_name(h->channels[i]), name))
			return channel_type(h->channels[i]);
	return NULL;
}
