/*
 * control.h - changing an execution from outside: approve, reject, abort.
 *
 * If a live steppy process runs the execution (holds its lease), the change
 * goes to it through the store's inbox and the answer comes back the same
 * way. If none does, the change is applied directly: the history gets the
 * decision (which the next `steppy resume` acts on), or for an abort the
 * release is stopped then and there.
 */
#ifndef STEPPY_RUNTIME_CONTROL_H
#define STEPPY_RUNTIME_CONTROL_H

#include "store/store.h"

enum control_result {
	CONTROL_DONE_BY_OWNER, /* the running process applied it */
	CONTROL_DONE_HERE,     /* applied directly; no process runs the release */
};

/*
 * Applies kind ("approve", "reject", "abort"; "retry" only through a running
 * owner) to execution id (exact id).
 * data: {"stage", "step"} for decisions, plus {"by", "comment", "via"};
 * taken. Waits up to wait_ms for a running owner's answer. Returns a
 * control_result, or SP_EINVAL (refused; reason in err), SP_EBUSY (no
 * answer in time; the command stays queued), or another negative code.
 */
int control_apply(struct store *st, const char *id, const char *kind, json_t *data, int64_t wait_ms,
                  struct strbuf *err);

#endif
