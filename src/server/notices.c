/*
 * notices.c - sending a notice of a release to channels through the
 * server's notification hub: a channel that cannot be reached becomes a
 * Notice in the release's history while it runs, else a line in the
 * server's log. Used by the observer (server.c) and approval links
 * (pages.c, personal.c).
 */
#include "server/server-internal.h"

#include "notify/hub.h"
#include "server/log.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>

/* The sends of one notice to a release's channels: a failure becomes a Notice of the
 * release while it runs, else a line in the server's log. */
struct warn_ctx {
	struct server *srv;
	char *id;
	int stage, step, attempt;
	size_t pending; /* results still to come */
};

static void notify_done(void *arg, const struct notify_result *r)
{
	struct warn_ctx *w = arg;
	if (r->unknown) {
		log_eventf("error", "notify.error", "release %s: no channel \"%s\" is configured",
		           w->id, r->channel);
	} else if (!r->ok && !r->cancelled) {
		json_t *data = json_pack("{ssssss}", "warning", "notification not delivered",
		                         "channel", r->channel, "error", r->error);
		if (runtime_notice(w->srv->rt, w->id, w->stage, w->step, w->attempt, data) < 0)
			log_eventf("warning", "notify.error", "release %s: %s", w->id, r->error);
	}
	if (--w->pending == 0) {
		free(w->id);
		free(w);
	}
}

static struct warn_ctx *warn_new(struct server *srv, const struct notice *notice, int stage,
                                 int step, int attempt)
{
	struct warn_ctx *w = xcalloc(1, sizeof(*w));
	*w = (struct warn_ctx){ .srv = srv,
		                .id = xstrdup(notice->execution_id),
		                .stage = stage,
		                .step = step,
		                .attempt = attempt };
	return w;
}

/* Frees w when nothing was sent (no result will come). */
static size_t warn_expect(struct warn_ctx *w, size_t sent)
{
	w->pending = sent;
	if (!sent) {
		free(w->id);
		free(w);
	}
	return sent;
}

void server_notify_one(struct server *srv, const char *name, const struct notice *notice, int stage,
                       int step, int attempt)
{
	struct warn_ctx *w = warn_new(srv, notice, stage, step, attempt);
	bool sent = notify_hub_send(srv->notify, name, notice, notify_done, w) != NULL;
	if (!sent)
		log_eventf("error", "notify.error", "release %s: no channel \"%s\" is configured",
		           notice->execution_id, name);
	warn_expect(w, sent);
}

size_t server_notify_except(struct server *srv, const struct doc_node *channels,
                            const struct notice *notice, int stage, int step, int attempt,
                            const char *const *skip)
{
	struct warn_ctx *w = warn_new(srv, notice, stage, step, attempt);
	return warn_expect(w,
	                   notify_hub_fanout(srv->notify, channels, skip, notice, notify_done, w));
}

size_t server_notify(struct server *srv, const struct doc_node *channels,
                     const struct notice *notice, int stage, int step, int attempt)
{
	return server_notify_except(srv, channels, notice, stage, step, attempt, NULL);
}
