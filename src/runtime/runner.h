/*
 * runner.h - the runtime's side of running a step type: what an attempt is
 * (attempt_info), the services a runner may use (step_services), and how
 * it reports back (attempt_started, attempt_ended, attempt_progress).
 *
 * The hooks themselves (start, cancel, reap, detach) are members of struct
 * step_type (plan/step-type.h); the runtime finds them through the step's
 * type (plan_step.type), never by name.
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
 * Types of remote work (AWS builds, pipelines) set STEP_REATTACH instead:
 * their work outlives the process, so after a crash or a stop the next
 * process calls start() again for every attempt in flight, with the
 * StepStarted handle in info->handle, or NULL when the process stopped
 * before the work was known to exist (then the runner finds it through the
 * attempt's idempotency key, and never starts it twice). A reattaching
 * runner calls attempt_started() only when info->handle is NULL.
 *
 * When the process stops, detach() (if set) forgets the work without
 * stopping it and without reporting; runners without it are cancelled.
 *
 * Every callback runs on the runtime's loop thread; a runner never blocks.
 */
#ifndef STEPPY_RUNTIME_RUNNER_H
#define STEPPY_RUNTIME_RUNNER_H

#include "plan/plan.h"
#include "plan/step-type.h"
#include "util/strbuf.h"

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

struct attempt;
struct aws;        /* aws/aws.h: carried for the step types, never used here */
struct http;       /* http/http.h: likewise */
struct notify_hub; /* notify/hub.h */

/*
 * What a process offers every runner: its loop and its clients. The
 * runtime sets loop and copies its options in; the runtime's owner (the
 * CLI's run, the server) makes the clients on runtime_loop() after
 * runtime_new() and sets release to free them: runtime_free() calls it
 * once every attempt has stopped, while the loop still runs. The runtime
 * itself never uses aws or http.
 */
struct step_services {
	uv_loop_t *loop;           /* the runtime's loop: all I/O of runners */
	struct http *http;         /* a shared HTTP client (owner's), or NULL */
	struct aws *aws;           /* the AWS client (owner's), or NULL: AWS steps fail */
	struct notify_hub *notify; /* every notification channel (owner's), or NULL */
	const char *notify_log;    /* notifications.log, for the owner's hub, or NULL */
	int64_t cancel_grace_ms;   /* SIGTERM to SIGKILL when cancelling local work */
	bool minimal_env;          /* Exec: a minimal environment, not steppy's own */
	/*
	 * A read-only view of how long this process may still run local work:
	 * a file descriptor (memfd, close-on-exec) of 8 bytes holding an
	 * int64_t, the CLOCK_BOOTTIME time in ms until which its leases are
	 * proven (RUNTIME_LEASE_FRESH_MS after the last renewal), moved on at
	 * every renewal. Runners of local work hand it to whatever keeps the
	 * work (cmd-supervise.c maps it and kills the command once that time
	 * has passed). Owned by the runtime; -1 if there is none.
	 */
	int lease_fd;
	/* (The supervisor that kills a command for the lease says so on the
	 * command's stderr, starting with LEASE_KILLED_LINE, and dies of
	 * SIGKILL: that is how the attempt's error tells the reason.) */
	/* Frees the owner's clients (see above); NULL if there are none. */
	void (*release)(struct step_services *svc);
};

/* One attempt, as start() sees it. Everything is borrowed, valid during start(). */
struct attempt_info {
	const char *execution_id;
	const char *idempotency_key; /* "ID/stage/step/attempt" */
	int stage, step, attempt;
	const struct plan_step *step_plan;
	const char *stage_name;
	const char *workdir;             /* absolute: where `steppy run` was started */
	const json_t *handle;            /* reattaching: the StepStarted handle, or NULL */
	bool reattaching;                /* started again by a later process */
	const struct step_services *svc; /* valid until runtime_free() */
	/* Values to mask in output (the process's secrets and the plan's
	 * `secret: true` values); NULL-terminated, or NULL. */
	const char *const *secret_values;
};

/* The start of the line cmd-supervise.c writes on a command's stderr when
 * it killed the command because the lease deadline passed. */
#define LEASE_KILLED_LINE                                                                          \
	"steppy: the command was killed: the steppy process running this release has not "         \
	"renewed its lease"

/* Shortest secret value masked in a runner's output: shorter ones would
 * mask ordinary words. */
#define RUNNER_MASK_MIN 6

/* str_mask() with the runner's minimum: text (heap) is taken, the result
 * owned by the caller. */
static inline char *runner_mask(char *text, char *const *secrets)
{
	return str_mask(text, secrets, RUNNER_MASK_MIN);
}

/* The runner's reports. handle and details are taken (owned). */
void attempt_started(struct attempt *a, json_t *handle);
void attempt_ended(struct attempt *a, bool ok, json_t *details);
/* Records a Notice for the attempt (a build's new phase ...); data taken. */
void attempt_progress(struct attempt *a, json_t *data);
/* True once the attempt's release is held by another process: cancel()
 * must then kill the work at once (SIGKILL, no grace period), since the
 * new owner may run the attempt again. */
bool attempt_lost(const struct attempt *a);

#endif
