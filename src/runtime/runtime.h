/*
 * runtime.h - runs executions: the event loop around the engine.
 *
 * One libuv loop drives any number of executions: child processes, timers,
 * signals, and polling the store for commands from other processes. Inputs
 * go to the pure engine (engine.h); the events it emits are committed to the
 * store in one transaction per loop iteration for all executions together
 * (group commit); only then are their effects carried out (start an
 * attempt, cancel one). Durable timers are kept as due times in the
 * histories; the runtime arms a single uv timer for the earliest.
 *
 * Ownership: the runtime borrows the store; it owns its executions.
 */
#ifndef STEPPY_RUNTIME_RUNTIME_H
#define STEPPY_RUNTIME_RUNTIME_H

#include "core/engine.h"
#include "core/policy.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

struct runtime;

/*
 * Leases (store.h). A process holds each release it drives for
 * RUNTIME_LEASE_TTL_MS and renews all of them every RUNTIME_LEASE_RENEW_MS
 * in one statement, so its loop may stall (a slow store, a long commit) for
 * about three renewals before it loses them. A server looks for releases
 * nobody holds every RUNTIME_TAKE_OVER_MS, give or take 10 %
 * (runtime_take_over()). A node that dies, hangs or is cut off from the
 * store has its releases taken over by the others within TTL + two rounds
 * after its last renewal: about 9.2 s at most, 6-8 s typically
 * (docs/scale-out.md).
 * Changing them changes that promise: a shorter TTL makes a node that
 * stalls lose its releases sooner, a shorter round costs the store more
 * reads.
 */
#define RUNTIME_LEASE_TTL_MS   7000
#define RUNTIME_LEASE_RENEW_MS 2000
#define RUNTIME_TAKE_OVER_MS   1000
/*
 * Local work (an Exec command) runs only while this process can prove its
 * leases: until RUNTIME_LEASE_FRESH_MS after the start of its last
 * renewal that succeeded. Past that (the process paused or stalled, the
 * store cut off) the command's supervisor kills it (step_services.lease_fd)
 * and the runtime cancels it, so it is dead before its lease can lapse
 * (TTL after that same renewal) and another process take the release over:
 * FRESH + the time a SIGKILL takes < TTL. Two missed renewals are
 * tolerated, a third is not.
 */
#define RUNTIME_LEASE_FRESH_MS 5000

/* What the runtime tells whoever shows progress (the terminal view). */
struct runtime_observer {
	/* Events of an execution were committed. */
	void (*on_events)(void *arg, const char *id, const struct exec_state *state,
	                  const struct event *events, size_t n);
	/* Something went wrong outside any execution's history (store errors ...). */
	void (*on_error)(void *arg, const char *message);
	/* Called about five times a second, to refresh a live view. May be NULL. */
	void (*on_tick)(void *arg);
	/* Good news outside any history (the store accepts writes again). May
	 * be NULL: then it goes to on_error. */
	void (*on_note)(void *arg, const char *message);
	void *arg;
};

struct runtime_options {
	bool fail_fast;                          /* every stage fails fast */
	int64_t cancel_grace_ms;                 /* SIGTERM to SIGKILL, for Exec; default 10 s */
	const char *notify_log;                  /* local notification log file */
	const struct runtime_observer *observer; /* may be NULL */
	bool keep_running; /* a server: run until stopped, not until all have ended */
	/* Steps that run local code (policy.h): NULL runs them all (the user's
	 * own `steppy run`); borrowed, must outlive the runtime. */
	const struct exec_policy *exec_policy;
	/* Exec commands get a minimal environment (PATH, HOME, LANG, TZ ... and
	 * the step's env) instead of steppy's own without STEPPY_* variables. */
	bool exec_minimal_env;
	/* Values masked as **** in Exec output (secrets of the process's
	 * environment); NULL-terminated, borrowed; may be NULL. */
	const char *const *secret_values;
	const struct people *people; /* the directory for "group:" approvers (borrowed; must
	                              * outlive the runtime), or NULL */
	/* A server: when the store refuses a commit (locked past the busy
	 * timeout, disk full), keep the events in memory, carry out nothing
	 * that depends on them, and retry with backoff (100 ms doubling to 5 s)
	 * until it accepts them; runtime_store_ok() says false meanwhile.
	 * Without it the runtime stops and runtime_run() returns 2. */
	bool retry_store;
};

int runtime_new(struct store *st, const struct runtime_options *opts, struct runtime **ret,
                struct strbuf *err);
/* Stops children, gives up leases, frees everything. Accepts NULL. */
void runtime_free(struct runtime *rt);

/*
 * Creates an execution of a bound plan (taken on success: the runtime owns
 * it; on failure the caller keeps it) and starts it. Sets *ret_id, borrowed
 * from the runtime and valid only until its loop runs again: a server
 * runtime (keep_running) forgets a release once it has ended, and any
 * runtime drops one another process has taken over (its lease expired), at
 * the latest runtime_free(). A caller that needs the id later - after
 * runtime_run(), on another thread - copies it at once.
 */
int runtime_submit(struct runtime *rt, struct plan *plan, const char *plan_file,
                   const char *started_by, const char **ret_id, struct strbuf *err);

/* runtime_submit() with a given id: SP_ECONFLICT if an execution has it
 * already (how an inbox file starts exactly one release). */
int runtime_submit_as(struct runtime *rt, struct plan *plan, const char *plan_file,
                      const char *started_by, const char *id, const char **ret_id,
                      struct strbuf *err);

/*
 * Takes over an unfinished execution of the store (its lease must be free,
 * expired, or held by a process that is gone), recovering attempts that were
 * in flight. Returns 0, SP_EBUSY (run by another live process), SP_ENOENT.
 */
int runtime_adopt(struct runtime *rt, const char *id, struct strbuf *err);

/* Adopts every unfinished execution it can. Sets *ret_n to how many. */
int runtime_adopt_all(struct runtime *rt, size_t *ret_n, struct strbuf *err);

/*
 * One round of taking over, for a server sharing the store with others
 * (every RUNTIME_TAKE_OVER_MS): finds the unfinished releases nobody holds
 * (their holder stopped renewing, or is a dead process of this host) and
 * adopts this process's share of them, in random order: as many as its
 * part of the releases held by live processes, at least one. A release
 * seen without a holder in the previous round too is adopted whatever the
 * share, so none waits more than two rounds. Does nothing while the store
 * is down or the runtime stops. Sets *ret_n to how many it adopted and,
 * when ids is not NULL, appends the first RUNTIME_TAKEN_IDS_MAX of their
 * ids to it, separated by commas; returns 0 or the store's code.
 */
#define RUNTIME_TAKEN_IDS_MAX 10
int runtime_take_over(struct runtime *rt, size_t *ret_n, struct strbuf *ids, struct strbuf *err);

/*
 * Runs until every execution the runtime holds has finished, or a stop was
 * asked (runtime_stop(), SIGINT, SIGTERM). Called once per runtime, on the
 * thread that owns it: its signal watchers and timers are stopped when it
 * returns, and what remains is for runtime_free(). Returns 0, 1 when stopped early,
 * or 2 when events could not be recorded (the store refused a commit; what
 * was not recorded is lost from this process and the releases' histories
 * end before it: a resume continues from there).
 */
int runtime_run(struct runtime *rt);

/* The policy for steps that run local code (opts.exec_policy; NULL: all run). */
const struct exec_policy *runtime_exec_policy(const struct runtime *rt);

/*
 * The services every runner gets (runtime/runner.h): loop, notify_log,
 * cancel_grace_ms and minimal_env are set from the options; the caller
 * fills in its clients (aws, http, notify) and their release hook after
 * runtime_new(), before the first runtime_submit() or runtime_adopt().
 * Owned by the runtime, valid until runtime_free().
 */
struct step_services;
struct step_services *runtime_services(struct runtime *rt);

/* Records a Notice in a release this runtime runs (data taken). Returns 0,
 * SP_ENOENT (not run here) or SP_EINVAL (it has ended). */
int runtime_notice(struct runtime *rt, const char *id, int stage, int step, int attempt,
                   json_t *data);

/* False while the store refuses commits (retry_store), with the store's
 * last error in reason (size bytes). Safe from any thread. */
bool runtime_store_ok(struct runtime *rt, char *reason, size_t size);

/* Asks runtime_run() to return soon; in-flight work is stopped and stays
 * in the histories as in flight, for a later resume. */
void runtime_stop(struct runtime *rt);

/* The status of an execution the runtime holds, or -1. */
int runtime_status(struct runtime *rt, const char *id);
/* True once the runtime was asked to stop (Ctrl-C, SIGTERM, runtime_stop). */
bool runtime_stopping(const struct runtime *rt);

/* The state of an execution the runtime holds, or NULL. */
const struct exec_state *runtime_state(struct runtime *rt, const char *id);

/* A decision on a Human step of an execution this runtime holds (from its
 * own terminal). who is taken. Returns 0 or SP_EINVAL with *ret_reason. */
int runtime_decide(struct runtime *rt, const char *id, int stage, int step, bool approve,
                   json_t *who, const char **ret_reason);

/* Adopts a FAILED or ABORTED execution and continues it (redrive). */
int runtime_redrive(struct runtime *rt, const char *id, json_t *who, struct strbuf *err);

/* Stops calling the observer (before the caller frees what it points to). */
void runtime_detach_observer(struct runtime *rt);

/* Frees the memory of executions that only wait (a person, a distant timer)
 * when many are held; they are read back from the store when needed. */
void runtime_park_idle(struct runtime *rt);

/* The runtime's loop, for handles of the caller's own (a terminal prompt). */
uv_loop_t *runtime_loop(struct runtime *rt);

/* Makes an execution id: 10 characters of base32 from the system's CSPRNG. */
void execution_id_new(char out[11]);

#endif
