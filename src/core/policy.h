/*
 * policy.h - which steps that run local code a process accepts.
 *
 * A step type flagged STEP_LOCAL_CODE (Exec, and plugin types that run
 * programs) runs as the user of steppy, with its files: the store, the
 * secret key, the credentials in its environment. `steppy run` is the
 * user's own shell and runs them all (no policy). `steppy serve` takes its
 * policy from the configuration's `exec` section: refused unless enabled,
 * refused for plans from an inbox unless also enabled there, and, with an
 * allow list, Exec only with one of the listed programs.
 *
 * The policy is checked twice: when a plan is submitted (the API, the
 * inbox: a diagnostic naming the step) and by the runtime before it starts
 * an attempt (a release adopted from another process, or submitted before
 * a restart with another configuration).
 */
#ifndef STEPPY_CORE_POLICY_H
#define STEPPY_CORE_POLICY_H

#include "plan/diag.h"
#include "plan/plan.h"
#include "util/strbuf.h"

#include <stdbool.h>

struct exec_policy {
	bool enabled;             /* steps that run local code are accepted at all */
	bool inbox;               /* ... also in plans that came through an inbox */
	const char *const *allow; /* NULL: any program; else NULL-terminated programs
	                           * (Exec's command[0], compared as written) */
};

/*
 * Checks one step against p (NULL: everything is allowed). Returns true if
 * it may run; otherwise false, with the reason in why and the JSON pointer
 * of the offending value relative to the step ("" or "/command/0") in
 * ret_where (a static string).
 */
bool exec_policy_allows(const struct exec_policy *p, const struct plan_step *step, bool from_inbox,
                        struct strbuf *why, const char **ret_where);

/*
 * Checks every step of a plan; adds an error diagnostic per refused step
 * (file, line, column and pointer of the step or its program). Returns 0,
 * or SP_EINVAL when something was refused.
 */
int exec_policy_check_plan(const struct exec_policy *p, const struct plan *plan, bool from_inbox,
                           struct diag_list *dl);

/* True for the startedBy of releases that came through an inbox ("inbox:..."). */
bool started_by_inbox(const char *started_by);

#endif
