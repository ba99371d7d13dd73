/*
 * engine.h - the execution engine's core: a pure state machine.
 *
 * Events in, events out, no I/O, no clock, no globals. The state of an
 * execution is the fold of its history (engine_apply() for each event, in
 * order). Everything that happens - a step's process exits, a timer comes
 * due, a person approves, someone aborts - enters through one of the
 * engine_on_*() functions with the current time; each appends the events
 * that follow to `out`, applying them to the state as it goes; then
 * engine_advance() keeps the release moving as far as it can without the
 * outside world: starting stages, scheduling attempts, firing due timers,
 * finishing stages and the execution.
 *
 * The runtime (runtime.h) records `out` durably *before* acting on it: a
 * StepScheduled event is the intent to start an attempt, and only once it is
 * committed does the runtime start the work; a StepTimedOut or
 * StepCancelRequested for an attempt it runs tells it to cancel. After a
 * crash the history says which attempts were in flight
 * (engine_in_flight()), and the runtime tells the engine how each ended.
 *
 * Steps of STEP_INTERNAL types (Wait, Human) run inside the engine (their
 * "work" is a durable timer, or waiting for a decision); every other step
 * type is external. Steps of STEP_DECISION types wait for people, whose
 * decisions the engine checks with the rule of core/approval.h.
 */
#ifndef STEPPY_CORE_ENGINE_H
#define STEPPY_CORE_ENGINE_H

#include "core/approval.h"
#include "core/event.h"
#include "plan/plan.h"

struct people;

#include <stdbool.h>
#include <stdint.h>

/* X(enum, stored name) */
#define EXEC_STATUS_LIST(X)                                                                        \
	X(EXEC_RUNNING, "RUNNING")                                                                 \
	X(EXEC_SUCCEEDED, "SUCCEEDED")                                                             \
	X(EXEC_FAILED, "FAILED")                                                                   \
	X(EXEC_REJECTED, "REJECTED")                                                               \
	X(EXEC_ABORTED, "ABORTED")

enum exec_status {
#define EXEC_STATUS_ENUM(e, name) e,
	EXEC_STATUS_LIST(EXEC_STATUS_ENUM)
#undef EXEC_STATUS_ENUM
};

#define STEP_STATUS_LIST(X)                                                                        \
	X(STEP_PENDING, "PENDING")       /* its stage has not reached it */                        \
	X(STEP_SCHEDULED, "SCHEDULED")   /* intent recorded, work not known to have begun */       \
	X(STEP_RUNNING, "RUNNING")       /* work begun (or waiting: timer, human) */               \
	X(STEP_CANCELLING, "CANCELLING") /* cancel asked of running work */                        \
	X(STEP_RETRY_WAIT, "RETRY_WAIT") /* failed; the next attempt waits for its time */         \
	X(STEP_SUCCEEDED, "SUCCEEDED")                                                             \
	X(STEP_FAILED, "FAILED")                                                                   \
	X(STEP_TIMED_OUT, "TIMED_OUT")                                                             \
	X(STEP_CANCELLED, "CANCELLED")                                                             \
	X(STEP_REJECTED, "REJECTED")

enum step_status {
#define STEP_STATUS_ENUM(e, name) e,
	STEP_STATUS_LIST(STEP_STATUS_ENUM)
#undef STEP_STATUS_ENUM
};

const char *exec_status_name(enum exec_status s);
const char *step_status_name(enum step_status s);
/* True for SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, REJECTED. */
bool step_status_final(enum step_status s);

struct step_state {
	enum step_status status;
	int attempt;        /* latest attempt number, 0 before the first */
	int run_attempts;   /* attempts since the start or the last redrive */
	int64_t started_ms; /* latest attempt began (StepStarted), or 0 */
	int64_t ended_ms;   /* reached a final status, or 0 */
	int64_t due_ms;     /* wait end, human expiry or retry time; 0 if none */
	int64_t timeout_ms; /* latest attempt's deadline; 0 if none */
	/*
	 * Steps that take decisions: the `by` of each approval of the latest
	 * attempt, in the order given, one per person (approval_same_person()); owned. Emptied when
	 * an attempt is scheduled, so approvals never carry over to a retry or
	 * a redrive. The step succeeds when napproved reaches minApprovals.
	 */
	char **approved_by;
	int napproved;
};

struct exec_state {
	const char *id;          /* execution id; borrowed */
	const struct plan *plan; /* borrowed; outlives the state */
	enum exec_status status;
	bool started;         /* ExecutionStarted applied */
	int stage;            /* current stage; plan->nstages once past the last */
	bool stage_open;      /* StageStarted applied, StageFinished not yet */
	bool abort_requested; /* since the last redrive */
	bool fail_fast;       /* --fail-fast: every stage is failFast */
	int64_t seq;          /* events applied */
	int64_t started_ms, finished_ms;
	char *started_by; /* ExecutionStarted's "startedBy" ("" if none; NULL before it); owned */
	struct step_state **steps; /* steps[stage][step] */
	char *reason;              /* text of the last refusal that names someone; owned */
	/* The last AbortRequested since the last redrive (all NULL/0 if none):
	 * who asked ("by"; NULL if unsaid), why ("reason"; NULL if unsaid), when. */
	char *aborted_by, *abort_reason; /* owned */
	int64_t abort_ms;
	const struct people *people; /* the people directory for "group:" approvers (borrowed,
	                              * set by whoever runs the release), or NULL */
};

/* Prepares an empty state for plan; free with exec_state_release(). */
void exec_state_init(struct exec_state *ex, const char *id, const struct plan *plan);
void exec_state_release(struct exec_state *ex);

/*
 * Applies one recorded event. Returns 0, or SP_EINVAL if the event does not
 * fit the state (out of sequence, unknown step, impossible transition):
 * a malformed history. The state is unchanged on error.
 */
int engine_apply(struct exec_state *ex, const struct event *ev);

/*
 * The inputs. Each appends the events that follow directly from it to out
 * (with seq and time_ms set, already applied); the caller then calls
 * engine_advance() to move the release on - or, to only record a change for
 * whichever process runs the release next, does not. They return 0, or
 * SP_EINVAL when the input does not apply (the step is not waiting for a
 * decision, the release has ended ...) with a reason in *ret_reason (static
 * text, or text owned by the state and valid until its next input); nothing
 * is appended then.
 */

/* Starts the first stage (after ExecutionStarted) or fires due timers. */
void engine_advance(struct exec_state *ex, int64_t now, struct event_list *out);

/* The work of an attempt began; handle says how to find it (a pid ...). Owned. */
int engine_on_started(struct exec_state *ex, int stage, int step, int attempt, json_t *handle,
                      int64_t now, struct event_list *out, const char **ret_reason);

/*
 * An attempt's work ended: ok, or failed with details (error message,
 * exit code, output ...; owned). An attempt being cancelled ends
 * CANCELLED whatever ok says. Ends of attempts that are no longer current
 * (timed out, superseded) are ignored.
 */
int engine_on_ended(struct exec_state *ex, int stage, int step, int attempt, bool ok,
                    json_t *details, int64_t now, struct event_list *out, const char **ret_reason);

/*
 * A person decided a waiting Human step. who: {by, approverRole, comment,
 * via ...}; owned. "by" names the person (absent or "": nobody signed in);
 * "approverRole" (true/false) says whether they hold the approver role,
 * absent when the front end has no roles (a command on the store's host).
 * A rejection ends the step REJECTED. An approval is recorded; the step
 * succeeds once minApprovals different people have approved its current
 * attempt. Who may decide is engine_may_decide() (core/approval.h), applied
 * here whichever front end carries the decision: refused are deciders
 * without the approver role, anyone not among the step's approvers, an
 * approval without a name when minApprovals > 1 or allowSelfApproval is
 * false, by whoever started the release when allowSelfApproval is false
 * (rejecting stays allowed), and a second approval by one person.
 */
int engine_on_decision(struct exec_state *ex, int stage, int step, bool approve, json_t *who,
                       int64_t now, struct event_list *out, const char **ret_reason);

/* Abort the release. who: {by, reason}; owned. */
int engine_on_abort(struct exec_state *ex, json_t *who, int64_t now, struct event_list *out,
                    const char **ret_reason);

/* Something worth recording that changes no state (a build's phase, a
 * notification that could not be delivered). stage/step/attempt may be -1/-1/0.
 * data owned. */
int engine_on_notice(struct exec_state *ex, int stage, int step, int attempt, json_t *data,
                     int64_t now, struct event_list *out, const char **ret_reason);

/* Continue a FAILED or ABORTED release where it stopped. who owned. */
int engine_on_redrive(struct exec_state *ex, json_t *who, int64_t now, struct event_list *out,
                      const char **ret_reason);

/* The earliest time a timer of this execution comes due, or INT64_MAX. */
int64_t engine_next_due(const struct exec_state *ex);

/* True if any step of the current stage is external work in flight
 * (SCHEDULED, RUNNING or CANCELLING, not Wait or Human). */
bool engine_in_flight(const struct exec_state *ex, int stage, int step);

/*
 * The rule of who may decide (approval_may_decide()) for d deciding step
 * (a step that takes decisions) of ex now: its approval rule, its starter,
 * the approvals of its current attempt. engine_on_decision() applies it to
 * every decision; front ends ask it only to show what a person may do and
 * to answer with the right status. Returns APPROVAL_MAY, or why not (its
 * text appended to why when not NULL). Does not look at whether the step
 * waits for a decision now.
 */
enum approval_verdict engine_may_decide(const struct exec_state *ex, int stage, int step,
                                        const struct approval_decider *d, bool approve,
                                        struct strbuf *why);

/* The commands people send to a release: X(enum, name as in the inbox). */
#define ENGINE_COMMAND_LIST(X)                                                                     \
	X(ENGINE_APPROVE, "approve")                                                               \
	X(ENGINE_REJECT, "reject")                                                                 \
	X(ENGINE_ABORT, "abort")                                                                   \
	X(ENGINE_RETRY, "retry")

enum engine_command {
#define ENGINE_COMMAND_ENUM(e, name) e,
	ENGINE_COMMAND_LIST(ENGINE_COMMAND_ENUM)
#undef ENGINE_COMMAND_ENUM
};

/* The command called name ("approve" ...): 0 and *ret set, or -1 if none is. */
int engine_command_find(const char *name, enum engine_command *ret);
const char *engine_command_name(enum engine_command cmd);

/*
 * One command, whichever way it came (the inbox, a direct apply, the
 * terminal): approve and reject go to engine_on_decision() for the step
 * data names ({"stage", "step"}, removed before the rest is recorded as
 * who decided), abort to engine_on_abort(), retry to engine_on_redrive().
 * data is taken. Returns as those do; "the command names no step" when a
 * decision names none. The caller calls engine_advance() when it runs the
 * release.
 */
int engine_on_command(struct exec_state *ex, enum engine_command cmd, json_t *data, int64_t now,
                      struct event_list *out, const char **ret_reason);

#endif
