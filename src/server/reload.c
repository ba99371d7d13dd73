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
 * and publishes it with one atomic store; workers read it once per use
 * (server_config()). A replaced view, the file it points into and its
 * channel hub are freed RETIRE_AFTER_MS after the swap, once the hub has
 * nothing on its way: long past any handler that read the old pointer.
 * Every hub sends with the server's one notifier, so a reload opens no
 * descriptor. A configuration path that is not a regular file (a FIFO
 * would block the loop) is refused.
 */
#include "notify/hub.h"
#include "runtime/runner.h"
#include "server/log.h"
#include "server/server-internal.h"
#include "server/service.h"
#include "util/alloc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RETIRE_AFTER_MS (120 * 1000) /* a replaced view and hub live this long */
#define SWEEP_EVERY_MS  (30 * 1000)

/* One reload: the loaded file (owner of its strings and channels), the
 * view published from it and the hub made of its channels. */
struct reload_gen {
	struct serve_config loaded;
	struct serve_config *view;
	struct notify_hub *hub;
	uint64_t retired_ms; /* when a later reload replaced it (loop time); 0: in force */
};

struct reload_state {
	char *config_path;
	struct people *live_people; /* the runtime's directory (loop thread only) */
	uv_signal_t signal;
	uv_timer_t sweep;
	struct reload_gen *gens; /* in order; the last one is in force */
	size_t ngens;
	struct notify_hub *first_hub; /* server_start()'s, once replaced; or NULL */
	uint64_t first_retired_ms;
};

/* Frees what was replaced long enough ago and has nothing on its way. */
static void sweep(struct server *srv)
{
	struct reload_state *rs = srv->reload;
	uint64_t now = uv_now(srv->loop);
	if (rs->first_hub && now - rs->first_retired_ms >= RETIRE_AFTER_MS &&
	    notify_hub_idle(rs->first_hub)) {
		notify_hub_free(rs->first_hub);
		rs->first_hub = NULL;
	}
	size_t kept = 0;
	for (size_t i = 0; i < rs->ngens; i++) {
		struct reload_gen *g = &rs->gens[i];
		if (g->retired_ms && now - g->retired_ms >= RETIRE_AFTER_MS &&
		    notify_hub_idle(g->hub)) {
			notify_hub_free(g->hub);
			free(g->view);
			serve_config_release(&g->loaded);
			continue;
		}
		rs->gens[kept++] = *g;
	}
	rs->ngens = kept;
}

static void sweep_cb(uv_timer_t *t)
{
	sweep(t->data);
}

/* The configuration file, if it is one: a FIFO or a device would block the
 * loop thread that reads it. */
static bool regular_file(const char *path, struct strbuf *why)
{
	struct stat sb;
	if (stat(path, &sb) < 0) {
		strbuf_addf(why, "%s cannot be read: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISREG(sb.st_mode)) {
		strbuf_addf(why, "%s is not a regular file", path);
		return false;
	}
	return true;
}

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
	memset(&gen, 0, sizeof(gen));
	if (!regular_file(rs->config_path, &why)) {
		/* refused below */
	} else if (serve_config_load(rs->config_path, &gen.loaded, &dl) < 0) {
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

	/* Channels: a new hub (with the built-in ones, as server_start() makes
	 * it); the old one finishes what it sends, then goes with its view. */
	struct notify_hub *old = srv->notify;
	struct step_services *svc = runtime_services(srv->rt);
	struct notify_hub_options ho = { .channels = view->channel_list,
		                         .nchannels = view->nchannels,
		                         .defaults = (const char *const *)view->default_names,
		                         .ndefaults = view->ndefault_names,
		                         .log_path = svc->notify_log,
		                         .notifier = srv->notifier };
	gen.hub = notify_hub_new(srv->loop, svc->aws, &ho);
	svc->notify = gen.hub; /* for Notify steps */
	__atomic_store_n(&srv->notify, gen.hub, __ATOMIC_RELEASE);
	__atomic_store_n(&srv->cfg, (const struct serve_config *)view, __ATOMIC_RELEASE);
	uint64_t now = uv_now(srv->loop);
	if (rs->ngens) {
		rs->gens[rs->ngens - 1].retired_ms = now ? now : 1;
	} else if (old) {
		rs->first_hub = old;
		rs->first_retired_ms = now;
	}
	rs->gens = xreallocarray(rs->gens, rs->ngens + 1, sizeof(*rs->gens));
	rs->gens[rs->ngens++] = gen;
	sweep(srv);
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
	uv_timer_init(srv->loop, &rs->sweep);
	rs->sweep.data = srv;
	uv_timer_start(&rs->sweep, sweep_cb, SWEEP_EVERY_MS, SWEEP_EVERY_MS);
	uv_unref((uv_handle_t *)&rs->sweep);
	return 0;
}

void reload_stop(struct server *srv)
{
	struct reload_state *rs = srv->reload;
	if (!rs)
		return;
	uv_close((uv_handle_t *)&rs->signal, NULL);
	uv_close((uv_handle_t *)&rs->sweep, NULL);
	notify_hub_free(rs->first_hub);
	rs->first_hub = NULL;
	/* The one in force is srv->notify, which server_free() has freed. */
	for (size_t i = 0; i + 1 < rs->ngens; i++) {
		notify_hub_free(rs->gens[i].hub);
		rs->gens[i].hub = NULL;
	}
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
