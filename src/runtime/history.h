/*
 * history.h - an execution read back from the store: its plan and the
 * state its history folds to; recovery of attempts left in flight; the
 * projection written next to the history.
 */
#ifndef STEPPY_RUNTIME_HISTORY_H
#define STEPPY_RUNTIME_HISTORY_H

#include "core/engine.h"
#include "store/store.h"

struct loaded_exec {
	char *id;
	struct plan *plan;         /* from the ExecutionStarted event */
	char *workdir;             /* where the release was started */
	struct exec_state state;   /* the fold of history */
	struct event_list history; /* every event, in order */
	bool from_inbox;           /* started through an inbox (startedBy "inbox:...") */
};

/*
 * Builds a plan from the JSON stored in an ExecutionStarted event: parsed,
 * validated and built again. Returns 0 and *ret (caller frees with
 * plan_free()), or SP_ESTORE with the reason in err.
 */
int plan_from_stored(const json_t *plan_json, struct plan **ret, struct strbuf *err);

/*
 * Reads execution id (exact id) and folds its history. Returns 0, or
 * SP_ENOENT / SP_ESTORE (unreadable or malformed history; err says where).
 * Release with loaded_exec_release().
 */
int execution_load(struct store *st, const char *id, struct loaded_exec *out, struct strbuf *err);
void loaded_exec_release(struct loaded_exec *le);

/* Why the secret values of a loaded execution's plan could not be read back
 * (they are "****" then, and it must not run), or NULL. Borrowed from le. */
const char *loaded_exec_secrets_problem(const struct loaded_exec *le);

/*
 * Recovery after a crash: every external attempt of the current stage still
 * in flight is reaped (its leftover work killed, by the runner's reap hook)
 * and ended as interrupted - except attempts of runners that reattach
 * (remote work such as AWS builds, found again by the runtime). Appends
 * the resulting events to out.
 */
void execution_recover(struct exec_state *state, const struct event_list *history, int64_t now,
                       struct event_list *out);

/* The latest event of type for an attempt, or NULL. */
const struct event *execution_find_event(const struct event_list *history, enum event_type type,
                                         int stage, int step, int attempt);

/* What an execution waits for ("approval of \"go\"", "approval of \"go\" (1 of 2:
 * alice)" when a step needs several), or NULL; caller frees. */
char *execution_waiting(const struct plan *plan, const struct exec_state *state);

/* Fills a store item for events appended to state (projection included). */
void execution_append_item(const char *id, const struct plan *plan, const struct exec_state *state,
                           const struct event_list *events, struct store_append_item *item,
                           char **ret_waiting);

#endif
