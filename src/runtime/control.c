/*
 * control.c - approve, reject and abort from outside (see control.h).
 */
#include "runtime/control.h"

#include "runtime/history.h"
#include "runtime/runtime.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Asks the owner through the inbox. Returns as control_apply(), or 1 when
 * the owner let the release go before reading the command (it ended, or
 * stopped): the command is withdrawn and the caller applies it itself.
 */
static int via_inbox(struct store *st, const char *id, const char *kind, json_t *data,
                     int64_t wait_ms, struct strbuf *err)
{
	int64_t cmd;
	int r = store_inbox_add(st, id, kind, data, wall_clock_ms(), &cmd, err);
	if (r < 0)
		return r;
	int64_t deadline = wall_clock_ms() + wait_ms;
	for (;;) {
		char *result = NULL;
		r = store_inbox_result(st, cmd, &result, err);
		if (r < 0)
			return r;
		if (r == 1) {
			int ok = result && !strcmp(result, "ok");
			if (!ok)
				strbuf_addstr(err, result && !strncmp(result, "refused: ", 9)
				                       ? result + 9
				                       : (result ? result : "refused"));
			free(result);
			return ok ? CONTROL_DONE_BY_OWNER : SP_EINVAL;
		}
		/* Results are committed before a lease is given up: a free lease
		 * with no result means nobody will ever read the command. */
		if (!store_lease_held_elsewhere(st, id, "", wall_clock_ms()) &&
		    store_inbox_withdraw(st, cmd, wall_clock_ms(), NULL) == 1)
			return 1;
		if (wall_clock_ms() >= deadline) {
			strbuf_addstr(err,
			              "the steppy process running this release has not answered "
			              "yet; the command stays queued for it");
			return SP_EBUSY;
		}
		struct timespec nap = { 0, 50 * 1000 * 1000 };
		nanosleep(&nap, NULL);
	}
}

int control_apply(struct store *st, const char *id, const char *kind, json_t *data, int64_t wait_ms,
                  struct strbuf *err)
{
	char owner[96], rnd[11], host[64] = "localhost";
	gethostname(host, sizeof(host) - 1);
	execution_id_new(rnd);
	snprintf(owner, sizeof(owner), "ctl:%s:%d:%s", host, (int)getpid(), rnd);
	int64_t now = wall_clock_ms();

	struct strbuf busy = STRBUF_INIT;
	int r = store_lease_take(st, id, owner, now, RUNTIME_LEASE_TTL_MS, &busy);
	strbuf_release(&busy);
	/* A command the owner let go of unread is withdrawn and applied here;
	 * if another process took the release meanwhile, it is asked again. */
	for (int round = 0; r == SP_EBUSY && round < 5; round++) {
		r = via_inbox(st, id, kind, data, wait_ms, err);
		if (r != 1) {
			json_decref(data);
			return r;
		}
		now = wall_clock_ms();
		r = store_lease_take(st, id, owner, now, RUNTIME_LEASE_TTL_MS, NULL);
	}
	if (r == SP_EBUSY) {
		json_decref(data);
		strbuf_addstr(err, "the release keeps changing hands; try again");
		return SP_EBUSY;
	}
	if (!strcmp(kind, "retry")) {
		/* Nobody runs it: the caller continues it itself (runtime_redrive). */
		store_lease_release(st, id, owner, NULL);
		json_decref(data);
		strbuf_addstr(err,
		              "no steppy process runs the release; continue it with steppy retry");
		return SP_EINVAL;
	}
	if (r < 0) {
		json_decref(data);
		return r;
	}

	struct loaded_exec le;
	r = execution_load(st, id, &le, err);
	if (r < 0) {
		json_decref(data);
		store_lease_release(st, id, owner, NULL);
		return r;
	}
	struct event_list out = EVENT_LIST_INIT;
	const char *reason = NULL;
	enum engine_command cmd;
	if (engine_command_find(kind, &cmd) < 0) {
		json_decref(data);
		reason = "unknown command";
		r = SP_EINVAL;
	} else {
		/* A decision is recorded only: the next process to run the
		 * release moves it on. An abort stops it here and now. */
		r = engine_on_command(&le.state, cmd, data, now, &out, &reason);
		if (r == 0 && cmd == ENGINE_ABORT) {
			execution_recover(&le.state, &le.history, now, &out);
			engine_advance(&le.state, now, &out);
		}
	}
	if (r < 0) {
		strbuf_addstr(err, reason);
	} else {
		struct store_append_item item;
		char *waiting;
		execution_append_item(id, le.plan, &le.state, &out, &item, &waiting);
		r = store_append(st, owner, now, &item, 1, NULL, NULL, 0, err);
		free(waiting);
		if (r == 0)
			r = CONTROL_DONE_HERE;
	}
	event_list_release(&out);
	loaded_exec_release(&le);
	store_lease_release(st, id, owner, NULL);
	return r;
}
