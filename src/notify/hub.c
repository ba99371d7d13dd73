/*
 * hub.c - every channel of a steppy process by name (see hub.h).
 *
 * The configured channels are borrowed; the built-in ones (terminal, log)
 * are the hub's; a topic ARN gets a channel made for the one send (the
 * notifier copies what it needs). Each send is a small record linked in the
 * hub, so that freeing the hub can tell every owner its send is over.
 */
#include "notify/hub.h"

#include "notify/notify-internal.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

struct notify_send {
	struct notify_hub *h;
	struct notify_send *prev, *next;
	struct notify_delivery *d;
	char *channel;
	notify_result_fn done;
	void *arg;
	bool unknown;
};

struct notify_hub {
	struct notifier *notifier;
	bool own_notifier; /* made here (else borrowed from the options) */
	struct channel *const *channels;
	size_t n;
	const char *const *defaults;
	size_t ndefaults;
	struct channel *terminal, *log; /* built-in: owned; log may be NULL */
	struct notify_send *sends;      /* in flight */
};

struct notify_hub *notify_hub_new(uv_loop_t *loop, struct aws *aws,
                                  const struct notify_hub_options *o)
{
	struct notify_hub *h = xcalloc(1, sizeof(*h));
	h->own_notifier = !o->notifier;
	h->notifier = o->notifier ? o->notifier : notifier_new(loop, aws);
	h->channels = o->channels;
	h->n = o->nchannels;
	h->defaults = o->defaults;
	h->ndefaults = o->ndefaults;
	h->terminal = terminal_channel_new("terminal", o->terminal, o->terminal_arg);
	h->log = o->log_path ? log_channel_new("log", o->log_path) : NULL;
	return h;
}

static void unlink_send(struct notify_send *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		s->h->sends = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s->channel);
	free(s);
}

void notify_hub_free(struct notify_hub *h)
{
	if (!h)
		return;
	while (h->sends) {
		struct notify_send *s = h->sends;
		char *channel = s->channel;
		struct notify_result r = { .channel = channel,
			                   .cancelled = true,
			                   .error = "stopped" };
		notify_result_fn done = s->done;
		void *arg = s->arg;
		s->channel = NULL;
		notify_cancel(s->d);
		unlink_send(s);
		done(arg, &r);
		free(channel);
	}
	if (h->own_notifier)
		notifier_free(h->notifier);
	channel_free(h->terminal);
	channel_free(h->log);
	free(h);
}

bool notify_hub_idle(const struct notify_hub *h)
{
	return !h->sends;
}

static void send_done(void *arg, bool ok, const char *error, const char *receipt)
{
	struct notify_send *s = arg;
	struct notify_result r = { .channel = s->channel,
		                   .ok = ok,
		                   .unknown = s->unknown,
		                   .error = error,
		                   .receipt = receipt };
	notify_result_fn done = s->done;
	void *done_arg = s->arg;
	char *channel = s->channel;
	s->channel = NULL;
	unlink_send(s);
	done(done_arg, &r);
	free(channel);
}

static bool is_topic_arn(const char *name)
{
	return !strncmp(name, "arn:", 4) && strstr(name, ":sns:") != NULL;
}

/* The channel called name: borrowed, or (*made) made for this send. */
static const struct channel *lookup(const struct notify_hub *h, const char *name,
                                    struct channel **made)
{
	*made = NULL;
	const struct channel *c = notify_hub_find(h, name);
	if (c)
		return c;
	if (!strcmp(name, "terminal"))
		return h->terminal;
	if (!strcmp(name, "log"))
		return h->log;
	if (is_topic_arn(name))
		return *made = sns_topic_channel_new(name);
	return NULL;
}

static struct notify_send *send_new(struct notify_hub *h, const char *name, notify_result_fn done,
                                    void *arg)
{
	struct notify_send *s = xcalloc(1, sizeof(*s));
	*s = (struct notify_send){
		.h = h, .channel = xstrdup(name), .done = done, .arg = arg, .next = h->sends
	};
	if (h->sends)
		h->sends->prev = s;
	h->sends = s;
	return s;
}

struct notify_send *notify_hub_send(struct notify_hub *h, const char *name,
                                    const struct notice *notice, notify_result_fn done, void *arg)
{
	struct channel *made;
	const struct channel *c = h ? lookup(h, name, &made) : NULL;
	if (!c)
		return NULL;
	struct notify_send *s = send_new(h, name, done, arg);
	s->d = notify_send_full(h->notifier, c, notice, send_done, s);
	channel_free(made);
	return s;
}

void notify_hub_cancel(struct notify_send *s)
{
	notify_cancel(s->d);
	unlink_send(s);
}

static bool skipped(const char *const *skip, const char *name)
{
	for (size_t i = 0; skip && skip[i]; i++)
		if (!strcmp(skip[i], name))
			return true;
	return false;
}

/* Sends to name, or reports (from the loop) that the hub has no such channel. */
static void fan_one(struct notify_hub *h, const char *name, const struct notice *notice,
                    notify_result_fn done, void *arg)
{
	if (notify_hub_send(h, name, notice, done, arg))
		return;
	struct notify_send *s = send_new(h, name, done, arg);
	s->unknown = true;
	char *error = xstrfmt("no channel \"%s\" is configured", name);
	s->d = notify_send_error(h->notifier, error, send_done, s);
	free(error);
}

size_t notify_hub_fanout(struct notify_hub *h, const struct doc_node *list, const char *const *skip,
                         const struct notice *notice, notify_result_fn done, void *arg)
{
	if (!h)
		return 0;
	size_t sent = 0;
	size_t n = list ? list->u.array.len : h->ndefaults;
	for (size_t i = 0; i < n; i++) {
		const char *name = list ? list->u.array.items[i]->u.string.s : h->defaults[i];
		if (!skipped(skip, name)) {
			fan_one(h, name, notice, done, arg);
			sent++;
		}
	}
	return sent;
}

bool notify_hub_has(const struct notify_hub *h, const char *name)
{
	return h && (notify_hub_find(h, name) || !strcmp(name, "terminal") ||
	             (!strcmp(name, "log") && h->log) || is_topic_arn(name));
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
	const struct channel *c = notify_hub_find(h, name);
	return c ? channel_type(c) : NULL;
}
