/*
 * event.h - the events of an execution's history.
 *
 * An execution is nothing but its history: an append-only list of events,
 * numbered from 1. Every state (of the execution, its stages, its steps)
 * is derived by folding the events in order (engine.h); nothing else is
 * stored that the history cannot explain. Events are stored with their type
 * *name*, so the list below may grow but names never change meaning.
 */
#ifndef STEPPY_CORE_EVENT_H
#define STEPPY_CORE_EVENT_H

#include <jansson.h>
#include <stdint.h>

/* X(enum, name, what the event means) */
#define EVENT_LIST(X)                                                                              \
	X(EV_EXECUTION_STARTED, "ExecutionStarted", "the release began; data holds the plan")      \
	X(EV_STAGE_STARTED, "StageStarted", "a stage began")                                       \
	X(EV_STEP_SCHEDULED, "StepScheduled", "intent: an attempt of a step is about to start")    \
	X(EV_STEP_STARTED, "StepStarted", "the attempt's work began; data says how to find it")    \
	X(EV_STEP_SUCCEEDED, "StepSucceeded", "the attempt succeeded")                             \
	X(EV_STEP_FAILED, "StepFailed", "the attempt failed")                                      \
	X(EV_STEP_TIMED_OUT, "StepTimedOut", "the attempt ran past its timeout and was cancelled") \
	X(EV_STEP_CANCEL_REQUESTED, "StepCancelRequested", "the attempt is being cancelled")       \
	X(EV_STEP_CANCELLED, "StepCancelled", "the attempt ended cancelled")                       \
	X(EV_RETRY_SCHEDULED, "RetryScheduled", "a failed step will be tried again at a time")     \
	X(EV_TIMER_FIRED, "TimerFired", "a durable timer came due")                                \
	X(EV_HUMAN_DECISION, "HumanDecision", "a person approved or rejected a Human step")        \
	X(EV_ABORT_REQUESTED, "AbortRequested", "someone asked to abort the release")              \
	X(EV_STAGE_FINISHED, "StageFinished", "every step of a stage has ended")                   \
	X(EV_EXECUTION_FINISHED, "ExecutionFinished", "the release ended")                         \
	X(EV_EXECUTION_REDRIVEN, "ExecutionRedriven", "a failed or aborted release continues")     \
	X(EV_NOTICE, "Notice", "something worth knowing that changes no state")

enum event_type {
#define EVENT_ENUM(e, name, what) e,
	EVENT_LIST(EVENT_ENUM)
#undef EVENT_ENUM
	    EV__COUNT
};

struct event {
	int64_t seq;     /* 1-based position in the history */
	int64_t time_ms; /* wall clock when recorded, ms since the epoch */
	enum event_type type;
	int stage;    /* stage index, or -1 */
	int step;     /* step index within the stage, or -1 */
	int attempt;  /* attempt number (1-based), or 0 */
	json_t *data; /* type-specific details; owned; never NULL */
};

/* The event type's stored name ("StepStarted"). */
const char *event_type_name(enum event_type type);
/* Looks a stored name up; returns -1 if unknown. */
int event_type_from_name(const char *name);

/* A growable list of events; owns each event's data. */
struct event_list {
	struct event *items;
	size_t len, alloc;
};

#define EVENT_LIST_INIT                                                                            \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* Appends an event (taking data; NULL means {}) and returns it. */
struct event *event_list_add(struct event_list *list, enum event_type type, int stage, int step,
                             int attempt, json_t *data);
void event_list_clear(struct event_list *list);
void event_list_release(struct event_list *list);

#endif
