/*
 * runner.h - how the runtime runs external step types (Exec, Notify, and
 * later the AWS ones): a table of hooks per type.
 *
 * The runtime calls start() only after the attempt's StepScheduled event is
 * committed. The runner reports back through attempt_started() once the
 * work exists (with a handle that lets a later process find it again) and
 * attempt_ended() when it is over; both may be called from start() itself
 * for work that is over at once. cancel() asks running work to stop; the
 * runner still calls attempt_ended() when it has. reap() is called after a
 * crash with the handle of an attempt that was in flight, to make sure its
 * work is gone (kill a leftover process group) before the engine counts the
 * attempt as interrupted.
 *
 * Runners of remote work (AWS builds, pipelines) set reattach instead: their
 * work outlives the process, so after a crash or a stop the next process
 * calls start() again for every attempt in flight, with the StepStarted
 * handle in info->handle, or NULL when the process stopped before the work
 * was known to exist (then the runner finds it through the attempt's
 * idempotency key, and never starts it twice). A reattaching runner calls
 * attempt_started() only when info->handle is NULL.
 *
 * When the process stops, detach() (if set) forgets the work without
 * stopping it and without reporting; runners without it are cancelled.
 */
#ifndef STEPPY_RUNTIME_RUNNER_H
#define STEPPY_RUNTIME_RUNNER_H

#include "plan/plan.h"

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

struct runtime;
struct attempt;
struct aws;
struct notify_hub;

struct attempt_info {
	const char *execution_id;
	const char *idempotency_key; /* "ID/stage/step/attempt" */
	int stage, step, attempt;
	const struct plan_step *step_plan;
	const char *stage_name;
	const char *workdir;     /* absolute: where `steppy run` was started */
	const char *notify_log;  /* path of the local notification log */
	int64_t cancel_grace_ms; /* SIGTERM to SIGKILL when cancelling */
	uv_loop_t *loop;
	struct aws *aws;           /* the process's AWS client */
	const json_t *handle;      /* reattaching: the StepStarted handle, or NULL */
	bool reattaching;          /* started again by a later process */
	struct notify_hub *notify; /* named notification channels, or NULL */
	bool minimal_env;          /* Exec: a minimal environment, not steppy's own */
	/* Values to mask in output (the process's secrets and the plan's
	 * `secret: true` values); NULL-terminated, or NULL; valid during start(). */
	const char *const *secret_values;
};

struct step_runner {
	const char *type; /* step type name */
	/* Starts the work. Returns 0, or a negative code with a message in err
	 * (the attempt then fails at once). */
	int (*start)(struct attempt *a, const struct attempt_info *info, void **ret_state,
	             struct strbuf *err);
	/* Asks the work to stop (may be called more than once). */
	void (*cancel)(struct attempt *a, void *state);
	/* Kills what a crashed process left of an attempt, from its handle. */
	void (*reap)(const json_t *handle);
	/* The work lives outside the process and is found again (see above). */
	bool reattach;
	/* Forgets the work without stopping it; the attempt is gone after. */
	void (*detach)(void *state);
};

/* The runner's reports. handle and details are taken (owned). */
void attempt_started(struct attempt *a, json_t *handle);
void attempt_ended(struct attempt *a, bool ok, json_t *details);
/* Records a Notice for the attempt (a build's new phase ...); data taken. */
void attempt_progress(struct attempt *a, json_t *data);

/* The runner for a step type, or NULL if the type cannot run here yet. */
const struct step_runner *step_runner_find(const char *type);

extern const struct step_runner exec_runner, notify_runner, codebuild_runner,
    codebuild_nowait_runner, codepipeline_runner, codepipeline_nowait_runner, lambda_runner;

#endif
