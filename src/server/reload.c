/*
 * reload.c - SIGHUP reloads the parts of `steppy serve`'s configuration that
 * change while it runs: API tokens, notification channels (and the default
 * ones) and the people directory. Releases go on, connections stay open;
 * the listener, TLS, the store, limits, OpenID Connect and the exec policy
 * keep what they had at start (a restart changes them).
 *
 * Everything happens on the loop thread (a uv signal handle). Worker
 * threads read the configuration through srv->cfg: a reload builds a new
 * view (a copy of the current one with the reloaded parts of the new file)
 * and publishes it with one atomic store. Old views, the files they point
 * into and old channel hubs stay alive until server_free(), so a worker
 * that read the old pointer never sees freed memory; reloads are rare and
 * small, so keeping them costs little.
 */
#include "notify/hub.h"
#include "runtime/runner.h"
#include "server/log.h"
#include "server/server-internal.h"
#include "server/service.h"
#include "util/alloc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One reload: the loaded file (owner of its strings and channels) and the
 * view published from it. */
struct reload_gen {
	struct serve_config loaded;
	struct serve_config *view;
};

struct reload_state {
	char *config_path;
	struct people *live_people; /* the runtime's directory (loop thread only) */
	uv_signal_t signal;
	struct reload_gen *gens;
	size_t ngens;
	struct notify_hub **old_hubs;
	size_t nold_hubs;
};

/* The first problem of a configuration that does not load, for the log. */
static void first_problem(const char *path, const struct diag_list *dl, struct strbuf *out)
{
	if (!dl->len) {
		strbuf_addf(out, "%s cannot be read", path);
		return;
	}
	const struct diag *d = &dl->items[0];
	strbuf_addf(out, "%s:%u:%u: %s%s%s", path, d->pos.line, d->pos.col,
	            d->pointer ? d->pointer : "", d->pointer ? ": " : "", d->message);
	if (dl->errors > 1)
		strbuf_addf(out, " (and %zu more)", dl->errors - 1);
}

/* Reads the file again and publishes its tokens, channels and people. */
static void reload(struct server *srv)
{
	struct reload_state *rs = srv->reload;
	service_reloading();
	struct reload_gen gen;
	struct diag_list dl = DIAG_LIST_INIT;
	struct strbuf why = STRBUF_INIT;
	if (serve_config_load(rs->config_path, &gen.loaded, &dl) < 0) {
		diag_list_sort(&dl);
		first_problem(rs->config_path, &dl, &why);
	} else if (server_config(srv)->ntokens && !gen.loaded.ntokens) {
		/* Without tokens every request may do everything. */
		strbuf_addstr(&why, "the new configuration has no tokens; removing every "
		                    "token takes a restart");
	}
	diag_list_release(&dl);
	if (why.len) {
		log_event("error", "config.reload.refused", why.buf, "file", rs->config_path, NULL);
		serve_config_release(&gen.loaded);
		strbuf_release(&why);
		service_reloaded(srv->url);
		return;
	}
	strbuf_release(&why);

	struct serve_config *view = xmalloc(sizeof(*view));
	*view = *srv->cfg;
	const struct serve_config *n = &gen.loaded;
	view->tokens = n->tokens;
	view->ntokens = n->ntokens;
	view->channels = n->channels;
	view->default_channels = n->default_channels;
	view->channel_list = n->channel_list;
	view->nchannels = n->nchannels;
	view->default_names = n->default_names;
	view->ndefault_names = n->ndefault_names;
	view->people = n->people;
	gen.view = view;
	rs->gens = xreallocarray(rs->gens, rs->ngens + 1, sizeof(*rs->gens));
	rs->gens[rs->ngens++] = gen;

	/* Channels: a new hub (with the built-in ones, as server_start() makes
	 * it); the old one finishes what it sends. */
	struct notify_hub *old = srv->notify;
	struct step_services *svc = runtime_services(srv->rt);
	struct notify_hub_options ho = { .channels = view->channel_list,
		                         .nchannels = view->nchannels,
		                         .defaults = (const char *const *)view->default_names,
		                         .ndefaults = view->ndefault_names,
		                         .log_path = svc->notify_log };
	struct notify_hub *hub = notify_hub_new(srv->loop, svc->aws, &ho);
	svc->notify = hub; /* for Notify steps */
	__atomic_store_n(&srv->notify, hub, __ATOMIC_RELEASE);
	if (old) {
		rs->old_hubs =
		    xreallocarray(rs->old_hubs, rs->nold_hubs + 1, sizeof(*rs->old_hubs));
		rs->old_hubs[rs->nold_hubs++] = old;
	}
	__atomic_store_n(&srv->cfg, (const struct serve_config *)view, __ATOMIC_RELEASE);
	if (rs->live_people)
		*rs->live_people = view->people;

	/* Local decisions defer to the server once it has tokens (store.h). */
	struct strbuf err = STRBUF_INIT;
	struct store *st = server_store_get(srv, &err);
	if (!st || store_meta_set(st, "serve.tokens", view->ntokens ? srv->url : NULL, &err) < 0)
		log_event("error", "server.error", err.buf, NULL);
	if (st)
		server_store_put(srv, st);
	strbuf_release(&err);
	char tokens[24], channels[24], people[24];
	snprintf(tokens, sizeof(tokens), "%zu", view->ntokens);
	snprintf(channels, sizeof(channels), "%zu", view->nchannels);
	snprintf(people, sizeof(people), "%zu", view->people.n);
	log_event("info", "config.reloaded", NULL, "file", rs->config_path, "tokens", tokens,
	          "channels", channels, "people", people, NULL);
	service_reloaded(srv->url);
}

static void hup_cb(uv_signal_t *h, int signum)
{
	(void)signum;
	reload(h->data);
}

int server_watch_reload(struct server *srv, const char *config_path, struct people *live_people)
{
	if (!config_path || srv->reload)
		return 0;
	struct reload_state *rs = xcalloc(1, sizeof(*rs));
	rs->config_path = xstrdup(config_path);
	rs->live_people = live_people;
	srv->reload = rs;
	uv_signal_init(srv->loop, &rs->signal);
	rs->signal.data = srv;
	uv_signal_start(&rs->signal, hup_cb, SIGHUP);
	uv_unref((uv_handle_t *)&rs->signal); /* it alone does not keep the loop running */
	return 0;
}

void reload_stop(struct server *srv)
{
	struct reload_state *rs = srv->reload;
	if (!rs)
		return;
	uv_close((uv_handle_t *)&rs->signal, NULL);
	for (size_t i = 0; i < rs->nold_hubs; i++)
		notify_hub_free(rs->old_hubs[i]);
	free(rs->old_hubs);
	rs->old_hubs = NULL;
	rs->nold_hubs = 0;
}

void reload_release(struct server *srv)
{
	struct reload_state *rs = srv->reload;
	if (!rs)
		return;
	for (size_t i = 0; i < rs->ngens; i++) {
		free(rs->gens[i].view);
		serve_config_release(&rs->gens[i].loaded);
	}
	free(rs->gens);
	free(rs->config_path);
	free(rs);
	srv->reload = NULL;
}
