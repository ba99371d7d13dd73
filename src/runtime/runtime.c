/*
 * runtime.c - the event loop around the engine (see runtime.h).
 *
 * The cycle, for every input (a child exited, a timer came due, a command
 * arrived from another process):
 *   1. the input goes to the engine, which applies and appends the events
 *      that follow to the execution's `pending` list;
 *   2. at the end of the loop iteration (a uv_check handle) the pending
 *      events of all executions are committed in one transaction;
 *   3. only then are their effects carried out: StepScheduled starts an
 *      attempt, StepTimedOut / StepCancelRequested / StepCancelled stop one.
 * So an effect never happens without its intent on disk, and a crash
 * between 2 and 3 leaves an intent whose effect is unknown, which recovery
 * handles (runtime_adopt()).
 */
#include "runtime/runtime.h"

#include "plan/doc-json.h"
#include "plan/step-type.h"
#include "runtime/history.h"
#include "runtime/runner.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/strmap.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define LEASE_TTL_MS   RUNTIME_LEASE_TTL_MS
#define LEASE_RENEW_MS RUNTIME_LEASE_RENEW_MS
#define LEASE_FRESH_MS RUNTIME_LEASE_FRESH_MS
#define POLL_MS        200
/* The inbox is read at least this often, changes or not (poll_cb). */
#define INBOX_EVERY_MS 5000
#define FLUSH_ROUNDS   8
/* Park idle executions only when more than this many are in memory ... */
#define PARK_ABOVE 32
/* ... and only if nothing of theirs comes due within this time. */
#define PARK_MIN_MS 60000
/* A store that refused a commit is tried again after 100 ms, doubling up
 * to this (retry_store: a server). */
#define STORE_RETRY_MAX_MS 5000
/* While the store is down, writes wait this long for a lock (instead of
 * 10 s), so the loop thread stays free for the rest between retries. */
#define STORE_DOWN_BUSY_MS 200
#define STORE_BUSY_MS      10000

/*
 * An execution this process holds. While it only waits for a person or a
 * distant timer it may be parked: plan and state are freed (they are in the
 * store) and only the id and the next due time stay, so thousands of
 * waiting releases cost little memory. A due timer or a command unparks it.
 */
struct rexec {
	char *id;
	struct plan *plan;         /* NULL while parked */
	char *workdir;             /* NULL while parked */
	struct exec_state state;   /* unused while parked */
	struct event_list pending; /* applied to state, not yet committed */
	bool parked;
	bool from_inbox;    /* started through an inbox: the policy's inbox rule applies */
	int64_t parked_due; /* next timer while parked, INT64_MAX if none */
	/* A commit whose outcome is unknown held the first unknown_n pending
	 * events, the last numbered unknown_seq (0: none). */
	size_t unknown_n;
	int64_t unknown_seq;
	/* Its lease was left out of a renewal (its row locked elsewhere, see
	 * store_lease_renew_each): its local work may run only until this
	 * steady_ms time, the deadline before that renewal; 0 while every
	 * renewal covers it (the process's deadline holds). */
	int64_t proven_until;
	bool renewed; /* named by the renewal in progress */
	struct rexec *next;
};

struct attempt {
	struct runtime *rt;
	struct rexec *ex;
	int stage, step, attempt;
	const struct step_type *type; /* its hooks: start, cancel, detach */
	void *state;
	bool ended;
	bool fenced; /* cancelled because the leases could not be renewed */
	bool lost;   /* killed, not stopped: another process holds or may take the release */
	struct attempt *next;
};

struct runtime {
	uv_loop_t loop;
	struct store *store;
	struct runtime_options opts;
	struct runtime_observer observer;
	char owner[128];
	struct rexec *execs;
	struct attempt *attempts;
	struct step_services svc; /* what runners get; clients filled in by the owner */
	size_t in_memory;         /* executions not parked */
	uv_timer_t due_timer, poll_timer;
	uv_check_t flush_check;
	uv_idle_t wake;
	uv_signal_t sigint, sigterm;
	bool stopping;
	bool failed; /* a store error stopped us */
	/*
	 * The store refused a commit and retry_store is set: pending events
	 * (and inbox answers) stay in memory, no effect is carried out, and the
	 * commit is tried again at retry_at (loop time) with backoff. store_down
	 * is read by other threads (runtime_store_ok()); down_reason under
	 * down_lock.
	 */
	atomic_bool store_down;
	int retry_round;
	uint64_t retry_at;
	uv_timer_t retry_timer;
	pthread_mutex_t down_lock;
	char down_reason[256];
	bool commit_unknown;   /* the last commit's outcome is unknown (rexec.unknown_n) */
	int64_t data_version;  /* the store's, when the inbox was last read; -1: read it */
	int64_t inbox_read_ms; /* when the inbox was last read (wall clock) */
	int64_t last_renew_ms; /* last renewal tried (steady_ms) */
	int64_t last_held_ms;  /* last renewal that succeeded (steady_ms): held until + TTL */
	/* Local work may run until *lease_until (steady_ms: CLOCK_BOOTTIME): the start
	 * of the last renewal that succeeded + LEASE_FRESH_MS. Shared with the
	 * supervisors of Exec commands through svc.lease_fd (a memfd mapped
	 * here); NULL (and lease_fd -1) if it could not be made. */
	int64_t *lease_until;
	int64_t lease_local; /* the same time: what the runtime decides with */
	bool fence_said;     /* the stop of local work was reported (once per lapse) */
	/* Releases runtime_take_over() saw without a live lease in its last
	 * round (ids owned by orphans_ids); a second sight takes them whatever
	 * the share. */
	struct strmap orphans_seen;
	char **orphans_ids;
	size_t norphans;
	int64_t take_over_said_ms; /* when a failed adoption was last reported */
	/* Inbox commands answered, committed with the next flush. */
	int64_t *done_ids;
	char **done_results;
	size_t ndone, done_alloc;
};

void execution_id_new(char out[11])
{
	static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
	unsigned char bytes[10];
	if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes)) {
		/* getrandom cannot fail for 10 bytes once the pool is ready */
		for (size_t i = 0; i < sizeof(bytes); i++)
			bytes[i] = (unsigned char)rand();
	}
	for (int i = 0; i < 10; i++)
		out[i] = alphabet[bytes[i] & 31];
	out[10] = '\0';
}

static void report(struct runtime *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct runtime *rt, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	if (rt->observer.on_error)
		rt->observer.on_error(rt->observer.arg, sb.buf);
	strbuf_release(&sb);
}

/* As report(), for good news: on_note, else on_error. */
static void note(struct runtime *rt, const char *message)
{
	if (rt->observer.on_note)
		rt->observer.on_note(rt->observer.arg, message);
	else if (rt->observer.on_error)
		rt->observer.on_error(rt->observer.arg, message);
}

static void mark_dirty(struct runtime *rt);

/* ---- how long local work may run -------------------------------------------- */

/* The one clock of lease timing here and in the supervisors: steady (a
 * wall clock step does not move it) and running during suspend (after a
 * resume the deadline has passed if the leases lapsed meanwhile). */
static int64_t steady_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t lease_until(const struct runtime *rt)
{
	return rt->lease_local; /* never the shared page: see lease_share() */
}

static void lease_until_set(struct runtime *rt, int64_t until)
{
	rt->lease_local = until;
	if (rt->lease_until)
		__atomic_store_n(rt->lease_until, until, __ATOMIC_RELEASE);
}

/* Makes the shared deadline (svc.lease_fd); without it only the runtime
 * itself stops local work when its leases lapse. The memfd is sealed
 * against writes through any other mapping or descriptor (a command can
 * open it again through /proc/STEPPY/fd/N: it must not move the deadline
 * of its siblings, nor switch the fence off), so only the mapping made
 * here writes it; and the runtime decides with its own copy (lease_local),
 * never what the page says. A kernel without F_SEAL_FUTURE_WRITE (before
 * Linux 5.1) gets no shared deadline at all: an unsealed one would be
 * writable by every command. */
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
static void lease_share(struct runtime *rt)
{
	rt->svc.lease_fd = -1;
	int fd = memfd_create("steppy-lease", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return;
	void *m = MAP_FAILED;
	if (ftruncate(fd, sizeof(int64_t)) == 0)
		m = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m != MAP_FAILED &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		munmap(m, sizeof(int64_t));
		m = MAP_FAILED;
	}
	if (m == MAP_FAILED) {
		close(fd);
		return;
	}
	rt->lease_until = m;
	rt->svc.lease_fd = fd;
}

static void lease_unshare(struct runtime *rt)
{
	if (rt->lease_until)
		munmap(rt->lease_until, sizeof(int64_t));
	if (rt->svc.lease_fd >= 0)
		close(rt->svc.lease_fd);
	rt->lease_until = NULL;
	rt->svc.lease_fd = -1;
}

static bool lease_stale(const struct runtime *rt)
{
	return steady_ms() >= lease_until(rt);
}

/* ---- executions --------------------------------------------------------- */

static struct rexec *find_exec(struct runtime *rt, const char *id)
{
	for (struct rexec *e = rt->execs; e; e = e->next)
		if (!strcmp(e->id, id))
			return e;
	return NULL;
}

static void rexec_free(struct rexec *e)
{
	exec_state_release(&e->state);
	event_list_release(&e->pending);
	plan_free(e->plan);
	free(e->workdir);
	free(e->id);
	free(e);
}

static bool has_attempts(struct runtime *rt, const struct rexec *e)
{
	for (struct attempt *a = rt->attempts; a; a = a->next)
		if (a->ex == e)
			return true;
	return false;
}

/* True if e only waits for a person or for timers at least PARK_MIN_MS away. */
static bool parkable(struct runtime *rt, const struct rexec *e, int64_t now)
{
	const struct exec_state *s = &e->state;
	if (e->parked || e->pending.len || s->status != EXEC_RUNNING || !s->stage_open ||
	    has_attempts(rt, e))
		return false;
	const struct plan_stage *stage = &e->plan->stages[s->stage];
	for (size_t i = 0; i < stage->nsteps; i++) {
		const struct step_state *st = &s->steps[s->stage][i];
		const struct step_type *type = stage->steps[i].type;
		bool human = (type->flags & STEP_DECISION) != 0;
		bool far = st->due_ms > now + PARK_MIN_MS &&
		           (!st->timeout_ms || st->timeout_ms > now + PARK_MIN_MS);
		if (step_status_final(st->status))
			continue;
		if (st->status == STEP_RUNNING && human &&
		    (!st->timeout_ms || st->timeout_ms > now + PARK_MIN_MS))
			continue;
		if (st->status == STEP_RUNNING && !human && (type->flags & STEP_INTERNAL) && far)
			continue;
		if (st->status == STEP_RETRY_WAIT && far)
			continue;
		return false;
	}
	return true;
}

static void park(struct runtime *rt, struct rexec *e)
{
	e->parked_due = engine_next_due(&e->state);
	exec_state_release(&e->state);
	plan_free(e->plan);
	e->plan = NULL;
	free(e->workdir);
	e->workdir = NULL;
	e->parked = true;
	rt->in_memory--;
}

/* Reads a parked execution back from the store. Returns 0, or reports and fails. */
static int unpark(struct runtime *rt, struct rexec *e)
{
	if (!e->parked)
		return 0;
	struct loaded_exec le;
	struct strbuf err = STRBUF_INIT;
	if (execution_load(rt->store, e->id, &le, &err) < 0) {
		report(rt, "cannot load %s: %s", e->id, err.buf);
		strbuf_release(&err);
		return -1;
	}
	if (loaded_exec_secrets_problem(&le)) {
		report(rt, "cannot continue %s without its secret values: %s", e->id,
		       loaded_exec_secrets_problem(&le));
		loaded_exec_release(&le);
		strbuf_release(&err);
		return -1;
	}
	strbuf_release(&err);
	e->plan = le.plan;
	e->workdir = le.workdir;
	e->state = le.state;
	e->state.id = e->id;
	e->state.people = rt->opts.people;
	e->parked = false;
	event_list_release(&le.history);
	free(le.id);
	rt->in_memory++;
	return 0;
}

static void park_idle(struct runtime *rt)
{
	if (rt->in_memory <= PARK_ABOVE)
		return;
	int64_t now = wall_clock_ms();
	for (struct rexec *e = rt->execs; e && rt->in_memory > PARK_ABOVE; e = e->next)
		if (parkable(rt, e, now))
			park(rt, e);
}

/* ---- attempts ------------------------------------------------------------- */

static struct attempt *find_attempt(struct runtime *rt, struct rexec *ex, int stage, int step,
                                    int attempt)
{
	for (struct attempt *a = rt->attempts; a; a = a->next)
		if (a->ex == ex && a->stage == stage && a->step == step && a->attempt == attempt &&
		    !a->ended)
			return a;
	return NULL;
}

static void unlink_attempt(struct runtime *rt, struct attempt *a)
{
	for (struct attempt **p = &rt->attempts; *p; p = &(*p)->next)
		if (*p == a) {
			*p = a->next;
			return;
		}
}

void attempt_started(struct attempt *a, json_t *handle)
{
	struct runtime *rt = a->rt;
	const char *reason;
	if (rt->stopping || !a->ex) {
		json_decref(handle);
		return;
	}
	int64_t now = wall_clock_ms();
	engine_on_started(&a->ex->state, a->stage, a->step, a->attempt, handle, now,
	                  &a->ex->pending, &reason);
	engine_advance(&a->ex->state, now, &a->ex->pending);
	mark_dirty(rt);
}

void attempt_progress(struct attempt *a, json_t *data)
{
	struct runtime *rt = a->rt;
	const char *reason;
	if (rt->stopping || !a->ex) {
		json_decref(data);
		return;
	}
	engine_on_notice(&a->ex->state, a->stage, a->step, a->attempt, data, wall_clock_ms(),
	                 &a->ex->pending, &reason);
	mark_dirty(rt);
}

/* Why local work was stopped or not started when the leases lapsed. */
#define FENCED_ERROR                                                                               \
	"stopped: this steppy process could not renew its leases for %d s (it was paused, "        \
	"stalled or cut off from the store), so its local work was stopped before another "        \
	"process could take the release over"

void attempt_ended(struct attempt *a, bool ok, json_t *details)
{
	struct runtime *rt = a->rt;
	a->ended = true;
	unlink_attempt(rt, a);
	if (a->fenced && !ok && json_is_object(details))
		json_object_set_new(details, "error",
		                    json_sprintf(FENCED_ERROR, LEASE_FRESH_MS / 1000));
	if (rt->stopping || !a->ex) {
		/* Not recorded: the history keeps the attempt in flight, and the
		 * next process to adopt the execution counts it as interrupted. */
		json_decref(details);
	} else {
		const char *reason;
		int64_t now = wall_clock_ms();
		engine_on_ended(&a->ex->state, a->stage, a->step, a->attempt, ok, details, now,
		                &a->ex->pending, &reason);
		engine_advance(&a->ex->state, now, &a->ex->pending);
		mark_dirty(rt);
	}
	free(a);
	if (rt->stopping && !rt->attempts)
		uv_stop(&rt->loop);
}

/*
 * The values to mask in the output of a step that runs local code or may
 * echo what it sent (STEP_OUTPUT_ECHOES): the process's
 * (opts.secret_values) and the plan's own `secret: true` values.
 * NULL-terminated; free the array (not the strings) and release *hold.
 */
static const char **secret_values_for(struct runtime *rt, const struct rexec *ex, json_t **hold)
{
	size_t n = 0;
	while (rt->opts.secret_values && rt->opts.secret_values[n])
		n++;
	json_t *vars_in = json_object();
	for (size_t k = 0; k < ex->plan->nvariables; k++)
		if (ex->plan->variables[k].value)
			json_object_set_new(vars_in, ex->plan->variables[k].name,
			                    json_string(ex->plan->variables[k].value));
	json_t *data =
	    json_pack("{soso}", "plan", doc_to_json(ex->plan->doc->root), "variables", vars_in);
	json_t *taken = execution_started_seal(data);
	json_decref(data);
	json_t *values = json_object_get(taken, "values");
	json_t *vars = json_object_get(taken, "variables"); /* values that went into one */
	const char **v =
	    xcalloc(n + json_array_size(values) + json_object_size(vars) + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = rt->opts.secret_values[i];
	size_t i;
	json_t *item;
	json_array_foreach(values, i, item)
	{
		v[n++] = json_string_value(item);
	}
	const char *name;
	json_object_foreach(vars, name, item)
	{
		v[n++] = json_string_value(item);
	}
	*hold = taken;
	return v;
}

/* Starts (or, reattaching, finds again) the work of an attempt. Returns it,
 * or NULL if it ended at once. */
static struct attempt *start_attempt_at(struct runtime *rt, struct rexec *ex, int stage, int step,
                                        int attempt, const char *key, const json_t *handle,
                                        bool reattaching)
{
	const struct plan_step *ps = &ex->plan->stages[stage].steps[step];
	const struct step_type *type = ps->type;
	bool runnable = type->start != NULL;
	const char *reason, *where;
	struct strbuf why = STRBUF_INIT;
	if (!runnable ||
	    !exec_policy_allows(rt->opts.exec_policy, ps, ex->from_inbox, &why, &where)) {
		/* Checked again here: a release adopted from another process, or
		 * submitted before a restart with another configuration. */
		int64_t now = wall_clock_ms();
		engine_on_ended(
		    &ex->state, stage, step, attempt, false,
		    json_pack("{ss}", "error",
		              runnable ? why.buf : "this steppy cannot run steps of this type yet"),
		    now, &ex->pending, &reason);
		strbuf_release(&why);
		engine_advance(&ex->state, now, &ex->pending);
		mark_dirty(rt);
		return NULL;
	}
	strbuf_release(&why);
	if ((type->flags & STEP_LOCAL_CODE) &&
	    (lease_stale(rt) || (ex->proven_until && steady_ms() >= ex->proven_until))) {
		/* flush() renewed if it could: the leases (or this release's,
		 * left out of the renewals) cannot be proven, and the command
		 * would be killed at once (cmd-supervise.c, fence_local_work). */
		int64_t now = wall_clock_ms();
		engine_on_ended(
		    &ex->state, stage, step, attempt, false,
		    json_pack("{so}", "error", json_sprintf(FENCED_ERROR, LEASE_FRESH_MS / 1000)),
		    now, &ex->pending, &reason);
		engine_advance(&ex->state, now, &ex->pending);
		mark_dirty(rt);
		return NULL;
	}
	json_t *hold = NULL;
	const char **secrets = ps->type->flags & (STEP_LOCAL_CODE | STEP_OUTPUT_ECHOES)
	                           ? secret_values_for(rt, ex, &hold)
	                           : NULL;
	struct attempt *a = xcalloc(1, sizeof(*a));
	*a = (struct attempt){
		.rt = rt, .ex = ex, .stage = stage, .step = step, .attempt = attempt, .type = type
	};
	a->next = rt->attempts;
	rt->attempts = a;
	struct attempt_info info = {
		.execution_id = ex->id,
		.idempotency_key = key,
		.stage = stage,
		.step = step,
		.attempt = attempt,
		.step_plan = ps,
		.stage_name = ex->plan->stages[stage].name,
		.workdir = ex->workdir,
		.handle = handle,
		.reattaching = reattaching,
		.svc = &rt->svc,
		.secret_values = secrets ? secrets : rt->opts.secret_values,
	};
	struct strbuf err = STRBUF_INIT;
	/* On error the runner has reported nothing; on success a may be gone. */
	int r = type->start(a, &info, ps->config, &a->state, &err);
	free(secrets); /* the runner keeps copies */
	json_decref(hold);
	if (r < 0)
		attempt_ended(a, false, json_pack("{ss}", "error", err.buf));
	strbuf_release(&err);
	return r < 0 ? NULL : find_attempt(rt, ex, stage, step, attempt);
}

static void start_attempt(struct runtime *rt, struct rexec *ex, const struct event *ev)
{
	start_attempt_at(rt, ex, ev->stage, ev->step, ev->attempt,
	                 json_string_value(json_object_get(ev->data, "idempotencyKey")), NULL,
	                 false);
}

/* After an adoption: finds again the remote work of attempts in flight. */
static void reattach_attempts(struct runtime *rt, struct rexec *e, const struct event_list *history)
{
	const struct exec_state *s = &e->state;
	if (!s->stage_open || s->status != EXEC_RUNNING)
		return;
	const struct plan_stage *ps = &e->plan->stages[s->stage];
	for (int i = 0; (size_t)i < ps->nsteps; i++) {
		const struct step_type *type = ps->steps[i].type;
		if (!type->start || !(type->flags & STEP_REATTACH) ||
		    !engine_in_flight(s, s->stage, i))
			continue;
		int attempt = s->steps[s->stage][i].attempt;
		const struct event *sched =
		    execution_find_event(history, EV_STEP_SCHEDULED, s->stage, i, attempt);
		const struct event *started =
		    execution_find_event(history, EV_STEP_STARTED, s->stage, i, attempt);
		bool cancelling = s->steps[s->stage][i].status == STEP_CANCELLING;
		struct attempt *a = start_attempt_at(
		    rt, e, s->stage, i, attempt,
		    sched ? json_string_value(json_object_get(sched->data, "idempotencyKey"))
		          : NULL,
		    started ? started->data : NULL, true);
		if (a && cancelling)
			a->type->cancel(a, a->state);
	}
}

/* Stops or, for remote work, forgets every attempt (the process stops). */
static void stop_attempts(struct runtime *rt)
{
	struct attempt **p = &rt->attempts;
	while (*p) {
		struct attempt *a = *p;
		if (a->type->detach) {
			*p = a->next;
			a->type->detach(a->state);
			free(a);
		} else {
			a->type->cancel(a, a->state);
			p = &a->next;
		}
	}
}

static void cancel_attempt(struct runtime *rt, struct rexec *ex, const struct event *ev)
{
	struct attempt *a = find_attempt(rt, ex, ev->stage, ev->step, ev->attempt);
	if (a)
		a->type->cancel(a, a->state);
}

/* Carries out what committed events ask for. */
static void perform(struct runtime *rt, struct rexec *ex, const struct event *events, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct event *ev = &events[i];
		switch (ev->type) {
		case EV_STEP_SCHEDULED:
			/* While stopping, a committed intent stays without effect:
			 * the next process to adopt the release recovers it. */
			if (!rt->stopping &&
			    !(ex->plan->stages[ev->stage].steps[ev->step].type->flags &
			      STEP_INTERNAL))
				start_attempt(rt, ex, ev);
			break;
		case EV_STEP_TIMED_OUT:
		case EV_STEP_CANCEL_REQUESTED:
		case EV_STEP_CANCELLED:
			cancel_attempt(rt, ex, ev);
			break;
		case EV_EXECUTION_FINISHED:
			store_lease_release(rt->store, ex->id, rt->owner, NULL);
			break;
		default:
			break;
		}
	}
}

/* ---- commit ---------------------------------------------------------------- */

static bool all_finished(struct runtime *rt)
{
	if (rt->attempts)
		return false;
	for (struct rexec *e = rt->execs; e; e = e->next)
		if (e->parked || e->state.status == EXEC_RUNNING || e->pending.len)
			return false;
	return true;
}

/*
 * Another process took e over (this one hung past its lease): lets it go.
 * Remote work is left to the new owner; local work is stopped, and its end
 * is not recorded (the new owner counts it as interrupted).
 */
static void drop_exec(struct runtime *rt, struct rexec *e)
{
	report(rt, "release %s is run by another steppy process now; this one lets it go", e->id);
	size_t n = 0;
	for (struct attempt *a = rt->attempts; a; a = a->next)
		n += a->ex == e;
	struct attempt **mine = xcalloc(n ? n : 1, sizeof(*mine));
	n = 0;
	for (struct attempt *a = rt->attempts; a; a = a->next)
		if (a->ex == e)
			mine[n++] = a;
	for (size_t i = 0; i < n; i++) {
		struct attempt *a = mine[i];
		if (a->type->detach) {
			unlink_attempt(rt, a);
			a->type->detach(a->state);
			free(a);
		} else {
			/* Another process holds the release and may run the attempt
			 * again: the work is killed at once (attempt_lost), no grace. */
			a->ex = NULL; /* orphaned: its end goes nowhere */
			a->lost = true;
			a->type->cancel(a, a->state);
		}
	}
	free(mine);
	for (struct rexec **p = &rt->execs; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	if (!e->parked)
		rt->in_memory--;
	rexec_free(e);
}

/*
 * Checks the leases of this process's executions against the store: takes
 * back those that merely expired, and lets go of those another process
 * holds now or appended to meanwhile (this copy is stale). After an append
 * was refused (all = false) only executions with events to commit are
 * looked at; after this process could not renew for longer than the TTL
 * (it was stopped, or cut off from the store: all = true) every one is,
 * parked ones too, since another node may have taken them over. Returns
 * true if something changed (an append is worth trying again).
 */
static bool take_back_leases(struct runtime *rt, bool all)
{
	bool changed = false;
	int64_t now = wall_clock_ms();
	for (struct rexec *e = rt->execs, *next; e; e = next) {
		next = e->next;
		if (!e->pending.len && !all)
			continue;
		int r = store_lease_take(rt->store, e->id, rt->owner, now, LEASE_TTL_MS, NULL);
		struct exec_row row;
		bool behind = false;
		if (r == 0 && store_get(rt->store, e->id, &row, NULL) == 0) {
			/* Someone appended while the lease was away (a command
			 * applied directly, another node): this copy is stale. A
			 * parked one has no copy, only whether it still runs.
			 * A commit whose outcome is unknown may be there: not
			 * behind (resolve_unknown() tells). */
			behind = e->parked
			             ? strcmp(row.status, "RUNNING") != 0
			             : row.last_seq != e->state.seq - (int64_t)e->pending.len &&
			                   !(e->unknown_n && row.last_seq == e->unknown_seq);
			exec_row_release(&row);
		}
		if (r == SP_EBUSY || behind) {
			if (behind)
				store_lease_release(rt->store, e->id, rt->owner, NULL);
			drop_exec(rt, e);
			changed = true;
		} else if (r == 0) {
			changed = true;
		}
	}
	return changed;
}

static void retry_cb(uv_timer_t *t)
{
	(void)t; /* only wakes the loop: the flush that follows tries again */
}

/* A commit failed and will be retried: says so once, schedules the retry. */
static void store_went_down(struct runtime *rt, const char *why)
{
	uint64_t delay = 100;
	for (int i = 0; i < rt->retry_round && delay < STORE_RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > STORE_RETRY_MAX_MS)
		delay = STORE_RETRY_MAX_MS;
	rt->retry_round++;
	rt->retry_at = uv_now(&rt->loop) + delay;
	uv_timer_start(&rt->retry_timer, retry_cb, delay, 0);
	if (atomic_load(&rt->store_down))
		return;
	pthread_mutex_lock(&rt->down_lock);
	snprintf(rt->down_reason, sizeof(rt->down_reason), "%s", why);
	pthread_mutex_unlock(&rt->down_lock);
	atomic_store(&rt->store_down, true);
	store_busy_timeout(rt->store, STORE_DOWN_BUSY_MS);
	report(rt,
	       "cannot record events: %s; nothing is lost: they are kept and tried again "
	       "with backoff, and changes are refused (503) until the store accepts writes",
	       why);
}

static void store_came_back(struct runtime *rt)
{
	atomic_store(&rt->store_down, false);
	rt->data_version = -1; /* what was queued meanwhile is read at the next poll */
	store_busy_timeout(rt->store, STORE_BUSY_MS);
	rt->retry_round = 0;
	uv_timer_stop(&rt->retry_timer);
	note(rt, "the store accepts writes again; the events kept meanwhile are recorded now");
}

bool attempt_lost(const struct attempt *a)
{
	return a->lost;
}

static void lease_renewed(const char *id, void *arg)
{
	struct rexec *e = find_exec(arg, id);
	if (e)
		e->renewed = true;
}

/*
 * After a renewal that worked: each execution it left out either has its
 * row locked by another session (a take in progress; not lost, but not
 * proven either: its local work may run only until the deadline it had,
 * proven_until, and is stopped then by fence_local_work) or is held by
 * another process now - then this one lets it go at once, its local work
 * killed (drop_exec), since the new owner may run the attempt again. Only
 * executions with work in flight are looked up; the others are checked at
 * their next append. prev is the deadline before this renewal.
 */
static void renewal_left_out(struct runtime *rt, int64_t prev)
{
	for (struct rexec *e = rt->execs, *next; e; e = next) {
		next = e->next;
		if (e->renewed) {
			e->proven_until = 0;
			continue;
		}
		if (!has_attempts(rt, e))
			continue;
		if (store_lease_held_elsewhere(rt->store, e->id, rt->owner, wall_clock_ms())) {
			drop_exec(rt, e);
			continue;
		}
		if (!e->proven_until)
			e->proven_until = prev;
	}
}

/* Renews every lease of this process (one statement). A renewal that fails
 * means the store does not take writes: for a server (retry_store) the
 * store is down from now on, so /healthz and the API say so even when no
 * release has events to commit. After a gap longer than the TTL, every
 * lease is checked (take_back_leases). Returns 0 or the store's code. */
static int renew_leases(struct runtime *rt)
{
	struct strbuf err = STRBUF_INIT;
	int64_t mono = steady_ms(), prev = lease_until(rt);
	rt->last_renew_ms = mono;
	for (struct rexec *e = rt->execs; e; e = e->next)
		e->renewed = false;
	int r = store_lease_renew_each(rt->store, rt->owner, wall_clock_ms(), LEASE_TTL_MS,
	                               lease_renewed, rt, &err);
	if (r < 0) {
		if (rt->opts.retry_store && !rt->stopping)
			store_went_down(rt, err.buf);
		else
			report(rt, "cannot renew leases: %s", err.buf);
	} else {
		/* A write went through: the store is back, whatever failed before
		 * (a commit's lost answer, an append refused meanwhile). */
		if (atomic_load(&rt->store_down))
			store_came_back(rt);
		bool gap = mono - rt->last_held_ms > LEASE_TTL_MS;
		rt->last_held_ms = mono;
		/* The leases run TTL from when the statement was sent (or later):
		 * local work may run FRESH from then, to end before they lapse. */
		lease_until_set(rt, mono + LEASE_FRESH_MS);
		rt->fence_said = false;
		if (gap && rt->execs) {
			take_back_leases(rt, true);
			rt->data_version = -1; /* commands queued meanwhile: read them */
		} else {
			renewal_left_out(rt, prev);
		}
	}
	strbuf_release(&err);
	return r;
}

/* Hands committed events of e over: observers, then effects (which may emit
 * the next events into e's pending list). Takes batch. */
static void committed(struct runtime *rt, struct rexec *e, struct event_list *batch)
{
	if (rt->observer.on_events)
		rt->observer.on_events(rt->observer.arg, e->id, &e->state, batch->items,
		                       batch->len);
	perform(rt, e, batch->items, batch->len);
	event_list_release(batch);
}

/* The first n events of e's pending list, moved out. */
static struct event_list take_pending(struct rexec *e, size_t n)
{
	if (n >= e->pending.len) {
		struct event_list all = e->pending;
		e->pending = (struct event_list)EVENT_LIST_INIT;
		return all;
	}
	struct event_list first = EVENT_LIST_INIT;
	first.items = xcalloc(n, sizeof(*first.items));
	memcpy(first.items, e->pending.items, n * sizeof(*first.items));
	first.len = first.alloc = n;
	memmove(e->pending.items, e->pending.items + n,
	        (e->pending.len - n) * sizeof(*e->pending.items));
	e->pending.len -= n;
	return first;
}

/* True if the events after seq `after` in the store are exactly events[0..n). */
static bool events_are(struct runtime *rt, const char *id, int64_t after,
                       const struct event *events, size_t n, struct strbuf *err, int *ret_r)
{
	struct event_list stored = EVENT_LIST_INIT;
	*ret_r = store_history(rt->store, id, after, &stored, err);
	bool same = *ret_r == 0 && stored.len == n;
	for (size_t i = 0; same && i < n; i++) {
		const struct event *a = &stored.items[i], *b = &events[i];
		same = a->seq == b->seq && a->time_ms == b->time_ms && a->type == b->type &&
		       a->stage == b->stage && a->step == b->step && a->attempt == b->attempt &&
		       json_equal(a->data, b->data);
	}
	event_list_release(&stored);
	return same;
}

/* What a commit whose outcome is unknown left in the store, per execution. */
enum unknown_verdict {
	UNKNOWN_UNWRITTEN, /* nothing after the events before it: not written */
	UNKNOWN_OURS,      /* exactly its events: written */
	UNKNOWN_TAKEN,     /* anything else: another process wrote there */
};

/*
 * The last commit's outcome is unknown (the connection was cut during
 * COMMIT): reads each execution's history back after the events committed
 * before it. One transaction wrote all or nothing: if the store holds
 * exactly the pending events there (same seq, time, type, place and data)
 * they were written and are handed over as committed; if it holds nothing
 * new, they stay pending for the next append; anything else was written by
 * another process that took the release over meanwhile (its lease lapsed
 * while this one could not reach the store), and the release is let go
 * without carrying out what this process's events asked. Returns 0, or
 * the store's code if it cannot be read (still unknown: tried again later).
 */
static int resolve_unknown(struct runtime *rt, struct strbuf *err)
{
	bool written = false;
	size_t n = 0;
	for (struct rexec *e = rt->execs; e; e = e->next)
		n += e->unknown_n > 0;
	enum unknown_verdict *verdict = xcalloc(n ? n : 1, sizeof(*verdict));
	size_t k = 0;
	for (struct rexec *e = rt->execs; e; e = e->next) {
		if (!e->unknown_n)
			continue;
		struct exec_row row;
		int r = store_get(rt->store, e->id, &row, err);
		if (r < 0) {
			free(verdict);
			return r;
		}
		int64_t before = e->unknown_seq - (int64_t)e->unknown_n;
		enum unknown_verdict v = UNKNOWN_TAKEN;
		if (row.last_seq == before)
			v = UNKNOWN_UNWRITTEN;
		else if (row.last_seq == e->unknown_seq &&
		         events_are(rt, e->id, before, e->pending.items, e->unknown_n, err, &r))
			v = UNKNOWN_OURS;
		exec_row_release(&row);
		if (r < 0) {
			free(verdict);
			return r;
		}
		written |= v == UNKNOWN_OURS;
		verdict[k++] = v;
	}
	rt->commit_unknown = false;
	k = 0;
	for (struct rexec *e = rt->execs, *next; e; e = next) {
		next = e->next;
		size_t m = e->unknown_n;
		e->unknown_n = 0;
		e->unknown_seq = 0;
		if (!m)
			continue;
		enum unknown_verdict v = verdict[k++];
		if (v == UNKNOWN_TAKEN) {
			drop_exec(rt, e);
		} else if (v == UNKNOWN_OURS) {
			struct event_list batch = take_pending(e, m);
			committed(rt, e, &batch);
		}
	}
	free(verdict);
	if (written) {
		for (size_t i = 0; i < rt->ndone; i++)
			free(rt->done_results[i]);
		rt->ndone = 0;
	}
	return 0;
}

/* Commits every pending event in one transaction, then performs effects. */
static bool flush_once(struct runtime *rt)
{
	if (rt->commit_unknown) {
		struct strbuf rerr = STRBUF_INIT;
		int rr = resolve_unknown(rt, &rerr);
		if (rr < 0 && rt->opts.retry_store && !rt->stopping)
			store_went_down(rt, rerr.buf);
		strbuf_release(&rerr);
		if (rr < 0)
			return false;
	}
	size_t n = 0;
	for (struct rexec *e = rt->execs; e; e = e->next)
		n += e->pending.len > 0;
	if (n == 0 && rt->ndone == 0)
		return false;
	struct store_append_item *items = xcalloc(n ? n : 1, sizeof(*items));
	char **waits = xcalloc(n ? n : 1, sizeof(*waits));
	size_t k = 0;
	for (struct rexec *e = rt->execs; e; e = e->next) {
		if (!e->pending.len)
			continue;
		execution_append_item(e->id, e->plan, &e->state, &e->pending, &items[k], &waits[k]);
		k++;
	}
	struct strbuf err = STRBUF_INIT;
	int r = store_append(rt->store, rt->owner, wall_clock_ms(), items, k, rt->done_ids,
	                     (const char *const *)rt->done_results, rt->ndone, &err);
	for (size_t i = 0; i < k; i++)
		free(waits[i]);
	free(waits);
	free(items);
	if (r == SP_ECONFLICT && take_back_leases(rt, false)) {
		strbuf_release(&err);
		return true; /* the others' events go in the next round */
	}
	/* A conflict that take_back_leases() could not resolve means it could
	 * not read or write the leases either: the store is down too. */
	if (r == SP_EUNKNOWN && !rt->stopping) {
		/* Written or not: the store is read back before the next try. */
		rt->commit_unknown = true;
		for (struct rexec *e = rt->execs; e; e = e->next) {
			e->unknown_n = e->pending.len;
			e->unknown_seq =
			    e->pending.len ? e->pending.items[e->pending.len - 1].seq : 0;
		}
	}
	if (r < 0 && rt->opts.retry_store && !rt->stopping) {
		/* Nothing was written (or, SP_EUNKNOWN, maybe all of it): everything
		 * stays pending for the retry. */
		store_went_down(rt, err.buf);
		strbuf_release(&err);
		return false;
	}
	if (r == 0 && atomic_load(&rt->store_down))
		store_came_back(rt);
	for (size_t i = 0; i < rt->ndone; i++)
		free(rt->done_results[i]);
	rt->ndone = 0;
	if (r < 0) {
		report(rt, "cannot record events, stopping: %s", err.buf);
		strbuf_release(&err);
		rt->failed = true;
		runtime_stop(rt);
		return false;
	}
	strbuf_release(&err);
	/* Committed. Hand the batch over before performing effects, which may
	 * emit the next events into the (now empty) pending lists. */
	for (struct rexec *e = rt->execs; e; e = e->next) {
		if (!e->pending.len)
			continue;
		struct event_list batch = take_pending(e, e->pending.len);
		committed(rt, e, &batch);
	}
	return true;
}

static void due_cb(uv_timer_t *t);

static void rearm(struct runtime *rt)
{
	int64_t due = INT64_MAX;
	for (struct rexec *e = rt->execs; e; e = e->next) {
		int64_t d = e->parked ? e->parked_due : engine_next_due(&e->state);
		if (d < due)
			due = d;
	}
	if (due == INT64_MAX) {
		uv_timer_stop(&rt->due_timer);
		return;
	}
	int64_t wait = due - wall_clock_ms();
	uv_timer_start(&rt->due_timer, due_cb, wait > 0 ? (uint64_t)wait : 0, 0);
}

/* A server keeps running for days: ended releases leave its memory. */
static void forget_finished(struct runtime *rt)
{
	for (struct rexec **p = &rt->execs; *p;) {
		struct rexec *e = *p;
		if (e->parked || e->state.status == EXEC_RUNNING || e->pending.len ||
		    has_attempts(rt, e)) {
			p = &e->next;
			continue;
		}
		*p = e->next;
		rt->in_memory--;
		rexec_free(e);
	}
}

/* While the store is down: true once the next retry is due and the leases
 * could be renewed (a cheap write that says whether writes work again). */
static bool retry_due(struct runtime *rt)
{
	if (uv_now(&rt->loop) < rt->retry_at)
		return false;
	return renew_leases(rt) == 0; /* clears store_down */
}

static void flush(struct runtime *rt)
{
	/* After a stall (the loop or the process stopped longer than FRESH),
	 * the leases are renewed - and, after a gap past the TTL, checked -
	 * before anything is committed or started. */
	if (!atomic_load(&rt->store_down) && !rt->stopping && rt->execs && lease_stale(rt) &&
	    steady_ms() - rt->last_renew_ms >= LEASE_RENEW_MS)
		renew_leases(rt);
	bool try = !atomic_load(&rt->store_down) || retry_due(rt);
	for (int round = 0; try && round < FLUSH_ROUNDS && !rt->failed; round++)
		if (!flush_once(rt))
			break;
	bool dirty = rt->ndone > 0;
	for (struct rexec *e = rt->execs; e; e = e->next)
		dirty |= e->pending.len > 0;
	/* A store that is down is tried again by retry_timer, not by spinning. */
	if (!dirty || atomic_load(&rt->store_down))
		uv_idle_stop(&rt->wake);
	if (rt->opts.keep_running)
		forget_finished(rt);
	park_idle(rt);
	rearm(rt);
	if (!rt->stopping && !rt->opts.keep_running && all_finished(rt))
		uv_stop(&rt->loop);
}

static void flush_cb(uv_check_t *h)
{
	flush(h->data);
}

static void wake_cb(uv_idle_t *h)
{
	(void)h; /* only keeps the loop from blocking while events wait */
}

static void mark_dirty(struct runtime *rt)
{
	uv_idle_start(&rt->wake, wake_cb);
}

static void due_cb(uv_timer_t *t)
{
	struct runtime *rt = t->data;
	int64_t now = wall_clock_ms();
	if (rt->stopping)
		return;
	for (struct rexec *e = rt->execs; e; e = e->next) {
		if (e->parked && e->parked_due > now)
			continue;
		if (e->parked && unpark(rt, e) < 0) {
			e->parked_due = now + 5000; /* try again later, without spinning */
			continue;
		}
		if (engine_next_due(&e->state) <= now) {
			engine_advance(&e->state, now, &e->pending);
			mark_dirty(rt);
		}
	}
}

/* ---- commands from other processes ------------------------------------- */

static void answer(struct runtime *rt, int64_t id, const char *result)
{
	if (rt->ndone == rt->done_alloc) {
		rt->done_alloc = rt->done_alloc ? rt->done_alloc * 2 : 8;
		rt->done_ids = xreallocarray(rt->done_ids, rt->done_alloc, sizeof(*rt->done_ids));
		rt->done_results =
		    xreallocarray(rt->done_results, rt->done_alloc, sizeof(*rt->done_results));
	}
	rt->done_ids[rt->ndone] = id;
	rt->done_results[rt->ndone++] = xstrdup(result);
	mark_dirty(rt);
}

static void apply_command(struct runtime *rt, struct inbox_cmd *cmd)
{
	struct rexec *e = find_exec(rt, cmd->execution_id);
	if (e && unpark(rt, e) < 0)
		e = NULL;
	const char *reason = NULL;
	int r = SP_EINVAL;
	int64_t now = wall_clock_ms();
	enum engine_command kind;
	if (!e)
		reason = "the execution is not run by this process";
	else if (engine_command_find(cmd->kind, &kind) < 0)
		reason = "unknown command";
	else
		r = engine_on_command(&e->state, kind, json_deep_copy(cmd->data), now, &e->pending,
		                      &reason);
	if (r == 0)
		engine_advance(&e->state, now, &e->pending);
	char *result = r == 0 ? xstrdup("ok") : xstrfmt("refused: %s", reason);
	answer(rt, cmd->id, result);
	free(result);
}

/*
 * The leases could not be renewed for LEASE_FRESH_MS (the store is cut off,
 * or the loop stalled; or, for one release, its lease row was locked by
 * another session through every renewal since: proven_until): another
 * process may take the releases over soon,
 * so local work (commands) stops now, not after the successor started its
 * own attempt. Its end is recorded, with why, if this process still holds
 * the release once the store answers; the supervisor of each command kills
 * it at the same deadline even if this process cannot act (paused).
 */
static void fence_local_work(struct runtime *rt)
{
	size_t n = 0;
	bool all = lease_stale(rt);
	int64_t now = steady_ms();
	for (struct attempt *a = rt->attempts; a; a = a->next) {
		if (a->ended || a->fenced || !(a->type->flags & STEP_LOCAL_CODE))
			continue;
		if (!all && !(a->ex && a->ex->proven_until && now >= a->ex->proven_until))
			continue; /* its lease is proven */
		/* Killed, no grace period: the lease may lapse before one ends. */
		a->fenced = a->lost = true;
		a->type->cancel(a, a->state);
		n++;
		if (!all)
			report(rt,
			       "release %s: its lease could not be renewed for %d s (its row is "
			       "locked by another session): stopping its command",
			       a->ex->id, LEASE_FRESH_MS / 1000);
	}
	if (n && all && !rt->fence_said) {
		report(rt,
		       "cannot renew the leases for %d s: stopping the commands of %zu attempt%s "
		       "(another steppy process may take their releases over)",
		       LEASE_FRESH_MS / 1000, n, n == 1 ? "" : "s");
		rt->fence_said = true;
	}
}

static void poll_cb(uv_timer_t *t)
{
	struct runtime *rt = t->data;
	int64_t now = wall_clock_ms(), mono = steady_ms();
	bool down = atomic_load(&rt->store_down);
	/* While the store is down, the retries renew the leases; and commands
	 * are not read, since their answers could not be recorded. */
	if (!down && mono - rt->last_renew_ms >= LEASE_RENEW_MS)
		down = renew_leases(rt) < 0 && rt->opts.retry_store;
	else if (down && !rt->stopping && lease_until(rt) - mono < LEASE_RENEW_MS &&
	         mono - rt->last_renew_ms >= 500)
		/* The backoff (up to 5 s) must not outlast the proof of the
		 * leases when the store is back already: near the deadline a
		 * renewal is tried every 500 ms, so local work is not stopped
		 * for nothing. */
		down = renew_leases(rt) < 0;
	fence_local_work(rt); /* all if the leases are stale, or those left out */
	if (rt->observer.on_tick)
		rt->observer.on_tick(rt->observer.arg);
	if (down)
		return;
	/* The inbox is read when the store says something changed, and every
	 * INBOX_EVERY_MS whatever it says: a command queued for a release
	 * before this process took it over changed nothing since. */
	int64_t v = store_data_version(rt->store);
	if ((v == rt->data_version && now - rt->inbox_read_ms < INBOX_EVERY_MS) || rt->stopping)
		return;
	struct inbox_cmd *cmds = NULL;
	size_t n = 0;
	if (store_inbox_pending(rt->store, rt->owner, &cmds, &n, NULL) < 0)
		return; /* looked at again on the next poll */
	rt->data_version = v;
	rt->inbox_read_ms = now;
	for (size_t i = 0; i < n; i++) {
		apply_command(rt, &cmds[i]);
		inbox_cmd_release(&cmds[i]);
	}
	free(cmds);
}

static void signal_cb(uv_signal_t *h, int signum)
{
	(void)signum;
	runtime_stop(h->data);
}

/* ---- public ------------------------------------------------------------------ */

int runtime_new(struct store *st, const struct runtime_options *opts, struct runtime **ret,
                struct strbuf *err)
{
	struct runtime *rt = xcalloc(1, sizeof(*rt));
	rt->store = st;
	rt->opts = *opts;
	if (!rt->opts.cancel_grace_ms)
		rt->opts.cancel_grace_ms = 10000;
	if (opts->observer)
		rt->observer = *opts->observer;
	char host[64] = "localhost", rnd[11];
	gethostname(host, sizeof(host) - 1);
	execution_id_new(rnd);
	snprintf(rt->owner, sizeof(rt->owner), "%s:%d:%s", host, (int)getpid(), rnd);
	if (uv_loop_init(&rt->loop) < 0) {
		strbuf_addstr(err, "cannot start the event loop");
		free(rt);
		return SP_ENOMEM;
	}
	uv_timer_init(&rt->loop, &rt->due_timer);
	uv_timer_init(&rt->loop, &rt->poll_timer);
	uv_timer_init(&rt->loop, &rt->retry_timer);
	pthread_mutex_init(&rt->down_lock, NULL);
	uv_check_init(&rt->loop, &rt->flush_check);
	uv_idle_init(&rt->loop, &rt->wake);
	uv_signal_init(&rt->loop, &rt->sigint);
	uv_signal_init(&rt->loop, &rt->sigterm);
	rt->due_timer.data = rt->poll_timer.data = rt->flush_check.data = rt->wake.data = rt;
	rt->retry_timer.data = rt;
	rt->sigint.data = rt->sigterm.data = rt;
	uv_check_start(&rt->flush_check, flush_cb);
	uv_unref((uv_handle_t *)&rt->flush_check);
	rt->data_version = -1;
	rt->last_renew_ms = rt->last_held_ms = steady_ms();
	rt->svc = (struct step_services){ .loop = &rt->loop,
		                          .notify_log = rt->opts.notify_log,
		                          .cancel_grace_ms = rt->opts.cancel_grace_ms,
		                          .minimal_env = rt->opts.exec_minimal_env };
	lease_share(rt);
	lease_until_set(rt, steady_ms() + LEASE_FRESH_MS);
	*ret = rt;
	return 0;
}

/* Forgets the previous round's orphans. */
static void orphans_forget(struct runtime *rt)
{
	strmap_release(&rt->orphans_seen);
	for (size_t i = 0; i < rt->norphans; i++)
		free(rt->orphans_ids[i]);
	free(rt->orphans_ids);
	rt->orphans_ids = NULL;
	rt->norphans = 0;
}

static void close_cb(uv_handle_t *h)
{
	(void)h;
}

void runtime_free(struct runtime *rt)
{
	if (!rt)
		return;
	/* Attempts still running are stopped; their ends are not recorded. */
	rt->stopping = true;
	stop_attempts(rt);
	while (rt->attempts)
		uv_run(&rt->loop, UV_RUN_ONCE);
	if (rt->svc.release)
		rt->svc.release(&rt->svc);
	/* After a store failure the leases are left to lapse (30 s; at once for
	 * another process of this host): each release would wait for the busy
	 * timeout again. */
	for (struct rexec *e = rt->execs; e && !rt->failed; e = e->next)
		store_lease_release(rt->store, e->id, rt->owner, NULL);
	uv_close((uv_handle_t *)&rt->due_timer, close_cb);
	uv_close((uv_handle_t *)&rt->poll_timer, close_cb);
	uv_close((uv_handle_t *)&rt->retry_timer, close_cb);
	uv_close((uv_handle_t *)&rt->flush_check, close_cb);
	uv_close((uv_handle_t *)&rt->wake, close_cb);
	uv_close((uv_handle_t *)&rt->sigint, close_cb);
	uv_close((uv_handle_t *)&rt->sigterm, close_cb);
	/* A uv_stop() from the last flush makes the first uv_run() return at once. */
	while (uv_run(&rt->loop, UV_RUN_DEFAULT) != 0)
		;
	uv_loop_close(&rt->loop);
	while (rt->execs) {
		struct rexec *e = rt->execs;
		rt->execs = e->next;
		rexec_free(e);
	}
	free(rt->done_ids);
	for (size_t i = 0; i < rt->ndone; i++)
		free(rt->done_results[i]);
	free(rt->done_results);
	orphans_forget(rt);
	lease_unshare(rt);
	pthread_mutex_destroy(&rt->down_lock);
	free(rt);
}

int runtime_submit(struct runtime *rt, struct plan *plan, const char *plan_file,
                   const char *started_by, const char **ret_id, struct strbuf *err)
{
	return runtime_submit_as(rt, plan, plan_file, started_by, NULL, ret_id, err);
}
/* After a create whose outcome is unknown (its answer was lost): whether
 * the release is in the store as that create left it (its id is new, so a
 * row with its creation time and first events can only be that commit). A
 * store that cannot tell yet counts as not created. */
static bool created_after_all(struct runtime *rt, const char *id, int64_t now, int64_t nevents)
{
	struct exec_row row;
	if (store_get(rt->store, id, &row, NULL) < 0)
		return false;
	bool ours = !strcmp(row.id, id) && row.created_ms == now && row.last_seq == nevents;
	exec_row_release(&row);
	return ours;
}

int runtime_submit_as(struct runtime *rt, struct plan *plan, const char *plan_file,
                      const char *started_by, const char *id, const char **ret_id,
                      struct strbuf *err)
{
	if (atomic_load(&rt->store_down)) {
		strbuf_addstr(err, "the store does not accept writes now (retrying)");
		return SP_ESTORE;
	}
	struct rexec *e = xcalloc(1, sizeof(*e));
	char fresh[11];
	if (!id) {
		execution_id_new(fresh);
		id = fresh;
	}
	e->id = xstrdup(id);
	e->plan = plan;
	e->from_inbox = started_by_inbox(started_by);
	char *cwd = getcwd(NULL, 0);
	e->workdir = cwd ? cwd : xstrdup("/");
	exec_state_init(&e->state, e->id, plan);
	e->state.people = rt->opts.people;

	json_t *vars = json_object();
	for (size_t i = 0; i < plan->nvariables; i++)
		if (plan->variables[i].value)
			json_object_set_new(vars, plan->variables[i].name,
			                    json_string(plan->variables[i].value));
	json_t *data = json_pack("{so so ss ss ss sb}", "plan", doc_to_json(plan->doc->root),
	                         "variables", vars, "planFile", plan_file ? plan_file : "",
	                         "startedBy", started_by ? started_by : "", "workdir", e->workdir,
	                         "failFast", rt->opts.fail_fast);
	int64_t now = wall_clock_ms();
	struct event *ev = event_list_add(&e->pending, EV_EXECUTION_STARTED, -1, -1, 0, data);
	ev->seq = 1;
	ev->time_ms = now;
	engine_apply(&e->state, ev);
	engine_advance(&e->state, now, &e->pending);

	char *waiting = execution_waiting(e->plan, &e->state);
	int64_t due = engine_next_due(&e->state);
	struct store_append_item first = {
		.id = e->id,
		.events = e->pending.items,
		.nevents = e->pending.len,
		.status = exec_status_name(e->state.status),
		.next_due_ms = due == INT64_MAX ? 0 : due,
		.waiting = waiting,
	};
	struct exec_row row = {
		.id = e->id,
		.plan_name = (char *)plan->name,
		.environment = (char *)plan->environment,
		.plan_file = (char *)plan_file,
		.started_by = (char *)started_by,
	};
	int r = store_create(rt->store, &row, rt->owner, now, LEASE_TTL_MS, &first, err);
	free(waiting);
	if (r == SP_EUNKNOWN && created_after_all(rt, e->id, now, (int64_t)e->pending.len)) {
		strbuf_reset(err);
		r = 0;
	}
	if (r < 0) {
		e->plan = NULL; /* the caller keeps the plan on failure */
		rexec_free(e);
		return r;
	}
	e->next = rt->execs;
	rt->execs = e;
	rt->in_memory++;
	*ret_id = e->id;
	struct event_list batch = e->pending;
	e->pending = (struct event_list)EVENT_LIST_INIT;
	if (rt->observer.on_events)
		rt->observer.on_events(rt->observer.arg, e->id, &e->state, batch.items, batch.len);
	perform(rt, e, batch.items, batch.len);
	event_list_release(&batch);
	mark_dirty(rt);
	return 0;
}

int runtime_adopt(struct runtime *rt, const char *id, struct strbuf *err)
{
	if (find_exec(rt, id))
		return 0;
	int64_t now = wall_clock_ms();
	int r = store_lease_take(rt->store, id, rt->owner, now, LEASE_TTL_MS, err);
	if (r < 0)
		return r;
	struct loaded_exec le;
	r = execution_load(rt->store, id, &le, err);
	if (r < 0) {
		store_lease_release(rt->store, id, rt->owner, NULL);
		return r;
	}
	if (loaded_exec_secrets_problem(&le)) {
		strbuf_addf(err, "cannot continue %s without its secret values: %s", id,
		            loaded_exec_secrets_problem(&le));
		loaded_exec_release(&le);
		store_lease_release(rt->store, id, rt->owner, NULL);
		return SP_ESTORE;
	}
	struct rexec *e = xcalloc(1, sizeof(*e));
	e->id = le.id;
	e->plan = le.plan;
	e->workdir = le.workdir;
	e->state = le.state;
	e->state.id = e->id;
	e->from_inbox = le.from_inbox;
	e->state.people = rt->opts.people;
	/* Attempts in flight when the last owner stopped are reaped and counted
	 * as interrupted (failed attempts: the retry policy decides what follows). */
	execution_recover(&e->state, &le.history, now, &e->pending);
	e->next = rt->execs;
	rt->execs = e;
	rt->in_memory++;
	/* Remote work (AWS builds ...) is found again, not restarted. */
	reattach_attempts(rt, e, &le.history);
	engine_advance(&e->state, now, &e->pending);
	event_list_release(&le.history);
	/* Commands queued for it before (a decision the last owner never
	 * read) are read at the next poll, whether the store changed or not. */
	rt->data_version = -1;
	mark_dirty(rt);
	return 0;
}

int runtime_adopt_all(struct runtime *rt, size_t *ret_n, struct strbuf *err)
{
	char **ids = NULL;
	size_t n = 0, adopted = 0;
	*ret_n = 0;
	if (atomic_load(&rt->store_down))
		return 0; /* taking leases is writing: later */
	int r = store_unfinished(rt->store, &ids, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct strbuf e2 = STRBUF_INIT;
		int a = runtime_adopt(rt, ids[i], &e2);
		if (a == 0) {
			adopted++;
			park_idle(rt); /* keep memory flat while thousands are read back */
		} else if (a != SP_EBUSY)
			report(rt, "cannot resume %s: %s", ids[i], e2.buf);
		strbuf_release(&e2);
		free(ids[i]);
	}
	free(ids);
	*ret_n = adopted;
	return 0;
}

int runtime_take_over(struct runtime *rt, size_t *ret_n, struct strbuf *taken, struct strbuf *err)
{
	char **ids = NULL;
	size_t n = 0, mine = 0, others = 0, norphans = 0, adopted = 0;
	*ret_n = 0;
	if (atomic_load(&rt->store_down) || rt->stopping)
		return 0;
	int r = store_unfinished(rt->store, &ids, &n, err);
	if (r < 0)
		return r;
	int64_t now = wall_clock_ms();
	/* Sort the ids: held here, held by a live process elsewhere, or
	 * nobody's (kept at the front of ids, the rest freed). Thousands may
	 * be held here: an index for this round, not a walk of the list each. */
	struct strmap here = STRMAP_INIT;
	for (struct rexec *e = rt->execs; e; e = e->next)
		strmap_put(&here, e->id, strlen(e->id), e);
	for (size_t i = 0; i < n; i++) {
		if (strmap_get(&here, ids[i], strlen(ids[i])))
			mine++;
		else if (store_lease_held_elsewhere(rt->store, ids[i], rt->owner, now))
			others++;
		else {
			ids[norphans++] = ids[i];
			continue;
		}
		free(ids[i]);
	}
	strmap_release(&here);
	/* Random order, so that nodes looking at once take different ones. */
	for (size_t i = norphans; i > 1; i--) {
		uint32_t k;
		if (getrandom(&k, sizeof(k), 0) != (ssize_t)sizeof(k))
			k = (uint32_t)rand();
		size_t j = k % i;
		char *t = ids[i - 1];
		ids[i - 1] = ids[j];
		ids[j] = t;
	}
	/* This process's part of the live load, of the orphans: with equal
	 * loads, each of k nodes takes 1/k; alone, it takes them all. */
	size_t share = (norphans * (mine + 1) + mine + others) / (mine + others + 1);
	struct strmap seen = STRMAP_INIT;
	size_t nseen = 0, failed = 0, failed_in_row = 0;
	struct strbuf first_failure = STRBUF_INIT;
	for (size_t i = 0; i < norphans; i++) {
		const char *id = ids[i];
		bool again = strmap_get(&rt->orphans_seen, id, strlen(id)) != NULL;
		int a = SP_EBUSY;
		struct strbuf e2 = STRBUF_INIT;
		/* Three failures in a row: the store is failing, the rest waits. */
		if (failed_in_row < 3 && (again || adopted < share)) {
			a = runtime_adopt(rt, id, &e2);
			failed_in_row = a == 0 || a == SP_EBUSY ? 0 : failed_in_row + 1;
			if (a == 0) {
				if (taken && adopted < RUNTIME_TAKEN_IDS_MAX)
					strbuf_addf(taken, "%s%s", adopted ? "," : "", id);
				adopted++;
				park_idle(rt);
			} else if (a != SP_EBUSY && failed++ == 0) {
				strbuf_addf(&first_failure, "%s: %s", id, e2.buf);
			}
		}
		strbuf_release(&e2);
		if (a == 0) {
			free(ids[i]);
		} else {
			/* Left for now: the next round takes it whatever the share. */
			ids[nseen++] = ids[i];
		}
	}
	/* A release this process cannot continue (its secret key is another)
	 * is tried every round: said once a minute, not every second. */
	if (failed && now - rt->take_over_said_ms >= 60000) {
		report(rt, "cannot resume %zu release%s, left to other processes: %s", failed,
		       failed == 1 ? "" : "s", first_failure.buf);
		rt->take_over_said_ms = now;
	}
	strbuf_release(&first_failure);
	orphans_forget(rt);
	for (size_t i = 0; i < nseen; i++)
		strmap_put(&seen, ids[i], strlen(ids[i]), ids[i]);
	rt->orphans_seen = seen;
	rt->orphans_ids = ids;
	rt->norphans = nseen;
	*ret_n = adopted;
	return 0;
}

int runtime_run(struct runtime *rt)
{
	uv_timer_start(&rt->poll_timer, poll_cb, POLL_MS, POLL_MS);
	uv_signal_start(&rt->sigint, signal_cb, SIGINT);
	uv_signal_start(&rt->sigterm, signal_cb, SIGTERM);
	mark_dirty(rt);
	if (rt->opts.keep_running || (rt->execs && !all_finished(rt)))
		uv_run(&rt->loop, UV_RUN_DEFAULT);
	rt->retry_at = 0; /* a last try, whatever the backoff says */
	if (atomic_load(&rt->store_down))
		store_busy_timeout(rt->store, STORE_BUSY_MS);
	if (!rt->failed)
		flush(rt);
	uv_timer_stop(&rt->poll_timer);
	uv_timer_stop(&rt->due_timer);
	uv_timer_stop(&rt->retry_timer);
	uv_signal_stop(&rt->sigint);
	uv_signal_stop(&rt->sigterm);
	if (rt->failed || atomic_load(&rt->store_down))
		return 2;
	return rt->stopping ? 1 : 0;
}

void runtime_stop(struct runtime *rt)
{
	if (rt->stopping)
		return;
	rt->stopping = true;
	stop_attempts(rt);
	if (!rt->attempts)
		uv_stop(&rt->loop);
}

bool runtime_stopping(const struct runtime *rt)
{
	return rt->stopping;
}

int runtime_status(struct runtime *rt, const char *id)
{
	struct rexec *e = find_exec(rt, id);
	return !e ? -1 : e->parked ? (int)EXEC_RUNNING : (int)e->state.status;
}

const struct exec_state *runtime_state(struct runtime *rt, const char *id)
{
	struct rexec *e = find_exec(rt, id);
	return e && !e->parked ? &e->state : NULL;
}

uv_loop_t *runtime_loop(struct runtime *rt)
{
	return &rt->loop;
}

int runtime_decide(struct runtime *rt, const char *id, int stage, int step, bool approve,
                   json_t *who, const char **ret_reason)
{
	struct rexec *e = find_exec(rt, id);
	if (!e || unpark(rt, e) < 0) {
		*ret_reason = "the execution is not run by this process";
		json_decref(who);
		return SP_EINVAL;
	}
	int64_t now = wall_clock_ms();
	int r =
	    engine_on_decision(&e->state, stage, step, approve, who, now, &e->pending, ret_reason);
	if (r == 0) {
		engine_advance(&e->state, now, &e->pending);
		mark_dirty(rt);
	}
	return r;
}

int runtime_redrive(struct runtime *rt, const char *id, json_t *who, struct strbuf *err)
{
	bool had = find_exec(rt, id) != NULL;
	int r = runtime_adopt(rt, id, err);
	if (r < 0) {
		json_decref(who);
		return r;
	}
	struct rexec *e = find_exec(rt, id);
	if (unpark(rt, e) < 0) {
		json_decref(who);
		strbuf_addstr(err, "cannot load the release");
		return SP_ESTORE;
	}
	const char *reason;
	int64_t now = wall_clock_ms();
	if (engine_on_redrive(&e->state, who, now, &e->pending, &reason) < 0) {
		strbuf_addstr(err, reason);
		/* Give back only a lease taken here for nothing: a release this
		 * process already ran, or one it now runs, keeps its lease. */
		if (!had && e->state.status != EXEC_RUNNING)
			store_lease_release(rt->store, id, rt->owner, NULL);
		return SP_EINVAL;
	}
	engine_advance(&e->state, now, &e->pending);
	mark_dirty(rt);
	return 0;
}

const struct exec_policy *runtime_exec_policy(const struct runtime *rt)
{
	return rt->opts.exec_policy;
}

struct step_services *runtime_services(struct runtime *rt)
{
	return &rt->svc;
}

int runtime_notice(struct runtime *rt, const char *id, int stage, int step, int attempt,
                   json_t *data)
{
	struct rexec *e = find_exec(rt, id);
	const char *reason;
	if (!e || unpark(rt, e) < 0) {
		json_decref(data);
		return SP_ENOENT;
	}
	int r = engine_on_notice(&e->state, stage, step, attempt, data, wall_clock_ms(),
	                         &e->pending, &reason);
	if (r == 0)
		mark_dirty(rt);
	return r;
}

void runtime_park_idle(struct runtime *rt)
{
	park_idle(rt);
}

void runtime_detach_observer(struct runtime *rt)
{
	memset(&rt->observer, 0, sizeof(rt->observer));
}

bool runtime_store_ok(struct runtime *rt, char *reason, size_t size)
{
	if (!atomic_load(&rt->store_down))
		return true;
	if (reason && size) {
		pthread_mutex_lock(&rt->down_lock);
		snprintf(reason, size, "%s", rt->down_reason);
		pthread_mutex_unlock(&rt->down_lock);
	}
	return false;
}
