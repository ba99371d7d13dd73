/*
 * codebuild-run.c - the runner of the CodeBuild and CodeBuildNoWait steps
 * (their plan language is codebuild.c).
 *
 * StartBuild carries the attempt's idempotency key as idempotencyToken, so a
 * process that crashed before recording the build id and starts the attempt
 * again gets the same build back, not a second one (CodeBuild keeps tokens
 * for 5 minutes). The build id is recorded in StepStarted; from then on a
 * later process only watches it.
 *
 * Watching: one poller per role and region batches every build it watches
 * into BatchGetBuilds calls of up to 100 ids. Each build has its own next
 * poll time: every 5 s by default (a completion is seen within 5 s), more
 * slowly while a project's recent builds say the build cannot be near its
 * end, every 6 s while it may be. A call is filled with builds not yet due,
 * up to 100, since they cost nothing extra. Throttling and server errors
 * back the poller off (1 s doubling to 60 s); other errors fail the builds
 * of that call. Abort and timeout call StopBuild and wait for the build to
 * stop.
 */
#include "steps/aws-step.h"
#include "steps/codebuild.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX     100
#define FIRST_FAST_MS 20000  /* young builds: early failures are common */
#define DEFAULT_MS    5000   /* the interval without better knowledge */
#define NEAR_MS       6000   /* while a build may be ending (3 s to see it, on average) */
#define SLOW_MAX_MS   60000  /* longest interval while it cannot be */
#define HISTORY       20     /* durations kept per project */
#define NOT_FOUND_MS  120000 /* a started build missing this long fails */

/* The phases of a build, in order (BatchGetBuilds' phaseType). */
static const char *const phase_names[] = {
	"SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE",  "INSTALL",
	"PRE_BUILD", "BUILD",  "POST_BUILD",   "UPLOAD_ARTIFACTS", "FINALIZING",
};
#define NPHASES ((int)(sizeof(phase_names) / sizeof(phase_names[0])))

/* A few recent values, to read a range from. */
struct samples {
	int64_t v[HISTORY];
	int n, next;
};

/* What recent successful builds of a project say: how long they took, and
 * how long they still ran once each phase had begun. */
struct project_stats {
	char *name;
	struct samples total;
	struct samples remaining[NPHASES];
	bool seeded;
	struct project_stats *next_project;
};

struct poller;

struct build {
	struct attempt *a;
	struct aws *aws;
	uv_loop_t *loop;
	struct poller *poller; /* while watched */
	struct aws_target target;
	char session[65];
	const char *project;
	char *id;
	char phase_name[32];    /* the last phase recorded */
	int phase;              /* its index in phase_names, or -1 */
	int64_t phase_start_ms; /* when it began */
	bool nowait, cancel, stop_sent;
	struct aws_call *call; /* StartBuild or StopBuild */
	int64_t started_ms, next_poll_ms, missing_since_ms;
	struct build *next;
};

struct poller {
	struct aws *aws;
	char *key;
	struct aws_target target;
	char *role_arn, *external_id, *region;
	struct build *builds;
	uv_timer_t timer;
	struct aws_call *call;
	struct build *batch[BATCH_MAX];
	size_t nbatch;
	int64_t not_before_ms, backoff_ms;
	struct project_stats *projects;
	struct aws_call *seed_call;
	struct project_stats *seeding;
	json_t *seed_ids; /* ended builds found so far for seeding */
	int seed_pages;
	struct poller *next;
};

static struct poller *pollers;

static void poller_arm(struct poller *p);
static void build_free(struct build *b);

/* ---- project history ------------------------------------------------------- */

static struct project_stats *stats_find(struct poller *p, const char *name)
{
	for (struct project_stats *s = p->projects; s; s = s->next_project)
		if (!strcmp(s->name, name))
			return s;
	struct project_stats *s = xcalloc(1, sizeof(*s));
	s->name = xstrdup(name);
	s->next_project = p->projects;
	p->projects = s;
	return s;
}

static void samples_add(struct samples *s, int64_t ms)
{
	if (ms <= 0)
		return;
	s->v[s->next] = ms;
	s->next = (s->next + 1) % HISTORY;
	if (s->n < HISTORY)
		s->n++;
}

static int phase_index(const char *name)
{
	for (int i = 0; name && i < NPHASES; i++)
		if (!strcmp(phase_names[i], name))
			return i;
	return -1;
}

static int64_t seconds_ms(const json_t *v)
{
	double d = json_number_value(v);
	return d > 0 ? (int64_t)(d * 1000.0) : 0;
}

/* Learns from a build that SUCCEEDED: its duration, and for each phase the
 * time from the phase's start to the build's end. */
static void stats_learn(struct project_stats *s, const json_t *build)
{
	int64_t start = seconds_ms(json_object_get(build, "startTime"));
	int64_t end = seconds_ms(json_object_get(build, "endTime"));
	if (!start || end <= start)
		return;
	samples_add(&s->total, end - start);
	json_t *phase;
	size_t i;
	json_array_foreach(json_object_get(build, "phases"), i, phase)
	{
		int k = phase_index(json_string_value(json_object_get(phase, "phaseType")));
		int64_t ps = seconds_ms(json_object_get(phase, "startTime"));
		if (k >= 0 && ps && end >= ps)
			samples_add(&s->remaining[k], end - ps);
	}
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a < b ? -1 : a > b;
}

/* The q-th percentile (0..100) of some samples. */
static int64_t percentile(const struct samples *s, int q)
{
	int64_t v[HISTORY];
	memcpy(v, s->v, (size_t)s->n * sizeof(v[0]));
	qsort(v, (size_t)s->n, sizeof(v[0]), cmp_i64);
	return v[(s->n - 1) * q / 100];
}

/*
 * When to look at a build again. Recent successful builds of its project
 * bound when it can end: from its start (their durations) and, sharper as
 * the build goes on, from the start of the phase it is in (how long they
 * still ran after that phase began). Until the earliest such end the build
 * is looked at rarely (half the time left, 5 to 60 s), from then on every
 * NEAR_MS until the latest, then every 5 s. Without history: every 5 s.
 */
static int64_t next_interval(struct poller *p, const struct build *b, int64_t now)
{
	int64_t age = now - b->started_ms;
	struct project_stats *s = stats_find(p, b->project);
	if (b->cancel || age < FIRST_FAST_MS)
		return DEFAULT_MS;
	bool known = false;
	int64_t lo = INT64_MIN, hi = INT64_MAX;
	if (s->total.n >= 3) {
		known = true;
		lo = b->started_ms + percentile(&s->total, 10) * 95 / 100 - 5000;
		hi = b->started_ms + percentile(&s->total, 90) * 105 / 100 + 5000;
	}
	const struct samples *rem = b->phase >= 0 ? &s->remaining[b->phase] : NULL;
	if (rem && rem->n >= 3 && b->phase_start_ms) {
		int64_t plo = b->phase_start_ms + percentile(rem, 0) * 95 / 100 - 2000;
		int64_t phi = b->phase_start_ms + percentile(rem, 100) * 105 / 100 + 2000;
		lo = known && lo > plo ? lo : plo;
		hi = known && hi < phi ? hi : phi;
		known = true;
	}
	if (!known)
		return DEFAULT_MS;
	if (now < lo) {
		int64_t d = (lo - now) / 2;
		return d < DEFAULT_MS ? DEFAULT_MS : d > SLOW_MAX_MS ? SLOW_MAX_MS : d;
	}
	return now < hi ? NEAR_MS : DEFAULT_MS;
}

/* Reads a build's duration when it has ended: endTime - startTime. */
static int64_t build_duration_ms(const json_t *build)
{
	double start = json_number_value(json_object_get(build, "startTime"));
	double end = json_number_value(json_object_get(build, "endTime"));
	return start > 0 && end > start ? (int64_t)((end - start) * 1000.0) : 0;
}

static void seed_next(struct poller *p);

static void seed_builds_done(void *arg, const struct aws_result *res)
{
	struct poller *p = arg;
	p->seed_call = NULL;
	json_t *o = res->error_code ? NULL : aws_result_json(res);
	json_t *item;
	size_t i;
	json_array_foreach(json_object_get(o, "builds"), i, item)
	{
		const char *status = json_string_value(json_object_get(item, "buildStatus"));
		if (status && !strcmp(status, "SUCCEEDED"))
			stats_learn(p->seeding, item);
	}
	json_decref(o);
	p->seeding = NULL;
	seed_next(p);
	poller_arm(p);
}

static bool watching(const struct poller *p, const char *id)
{
	for (const struct build *b = p->builds; b; b = b->next)
		if (b->id && !strcmp(b->id, id))
			return true;
	return false;
}

#define SEED_PAGES 5 /* pages of ids read past builds of this very release */

static void seed_list_done(void *arg, const struct aws_result *res)
{
	struct poller *p = arg;
	p->seed_call = NULL;
	json_t *o = res->error_code ? NULL : aws_result_json(res);
	json_t *ids = json_object_get(o, "ids");
	const char *more = json_string_value(json_object_get(o, "nextToken"));
	/* The newest builds may be the ones this release just started: skip
	 * those (and read further pages) to find builds that have ended. */
	for (size_t i = 0; i < json_array_size(ids) && json_array_size(p->seed_ids) < HISTORY;
	     i++) {
		const char *id = json_string_value(json_array_get(ids, i));
		if (id && !watching(p, id))
			json_array_append_new(p->seed_ids, json_string(id));
	}
	if (json_array_size(p->seed_ids) < HISTORY && more && ++p->seed_pages < SEED_PAGES) {
		p->seed_call =
		    aws_json_call(p->aws, &p->target, "CodeBuild_20161006", "ListBuildsForProject",
		                  json_pack("{ssssss}", "projectName", p->seeding->name,
		                            "sortOrder", "DESCENDING", "nextToken", more),
		                  seed_list_done, p);
		json_decref(o);
		return;
	}
	json_decref(o);
	if (json_array_size(p->seed_ids) == 0) {
		p->seeding = NULL;
		seed_next(p);
		return;
	}
	json_t *want = p->seed_ids;
	p->seed_ids = json_array();
	p->seed_call = aws_json_call(p->aws, &p->target, "CodeBuild_20161006", "BatchGetBuilds",
	                             json_pack("{so}", "ids", want), seed_builds_done, p);
}

/* Learns typical durations of projects seen for the first time: two calls
 * per project and process (ListBuildsForProject, BatchGetBuilds). */
static void seed_next(struct poller *p)
{
	if (p->seed_call)
		return;
	for (struct build *b = p->builds; b; b = b->next) {
		struct project_stats *s = stats_find(p, b->project);
		if (s->seeded)
			continue;
		s->seeded = true;
		p->seeding = s;
		p->seed_pages = 0;
		json_array_clear(p->seed_ids);
		p->seed_call = aws_json_call(
		    p->aws, &p->target, "CodeBuild_20161006", "ListBuildsForProject",
		    json_pack("{ssss}", "projectName", s->name, "sortOrder", "DESCENDING"),
		    seed_list_done, p);
		return;
	}
}

/* ---- the poller ------------------------------------------------------------- */

static void poller_close_cb(uv_handle_t *h)
{
	struct poller *p = h->data;
	while (p->projects) {
		struct project_stats *s = p->projects;
		p->projects = s->next_project;
		free(s->name);
		free(s);
	}
	json_decref(p->seed_ids);
	free(p->key);
	free(p->role_arn);
	free(p->external_id);
	free(p->region);
	free(p);
}

static void poller_release_if_idle(struct poller *p)
{
	if (p->builds)
		return;
	for (struct poller **pp = &pollers; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (p->call)
		aws_cancel(p->call);
	if (p->seed_call)
		aws_cancel(p->seed_call);
	uv_timer_stop(&p->timer);
	uv_close((uv_handle_t *)&p->timer, poller_close_cb);
}

static struct poller *poller_for(struct build *b, uv_loop_t *loop)
{
	const struct aws_target *t = &b->target;
	char *key = xstrfmt("%p\x1f%s\x1f%s\x1f%s", (void *)b->aws, t->role_arn ? t->role_arn : "",
	                    t->external_id ? t->external_id : "", t->region ? t->region : "");
	for (struct poller *p = pollers; p; p = p->next)
		if (!strcmp(p->key, key)) {
			free(key);
			return p;
		}
	struct poller *p = xcalloc(1, sizeof(*p));
	p->aws = b->aws;
	p->key = key;
	p->role_arn = t->role_arn ? xstrdup(t->role_arn) : NULL;
	p->external_id = t->external_id ? xstrdup(t->external_id) : NULL;
	p->region = t->region ? xstrdup(t->region) : NULL;
	p->target = (struct aws_target){ .service = "codebuild",
		                         .region = p->region,
		                         .role_arn = p->role_arn,
		                         .external_id = p->external_id,
		                         .session_name = "steppy-build-watch" };
	p->seed_ids = json_array();
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	p->next = pollers;
	pollers = p;
	return p;
}

static void poller_remove(struct build *b)
{
	struct poller *p = b->poller;
	if (!p)
		return;
	for (struct build **pp = &p->builds; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	for (size_t i = 0; i < p->nbatch; i++)
		if (p->batch[i] == b)
			p->batch[i] = NULL;
	b->poller = NULL;
	poller_release_if_idle(p);
}

static void watch(struct build *b)
{
	struct poller *p = poller_for(b, b->loop);
	b->poller = p;
	b->next_poll_ms = wall_clock_ms() + DEFAULT_MS;
	b->next = p->builds;
	p->builds = b;
	seed_next(p);
	poller_arm(p);
}

/* A failed phase and its message: "BUILD: COMMAND_EXECUTION_ERROR: ...". */
static void failed_phase(const json_t *build, struct strbuf *out)
{
	json_t *phase;
	size_t i;
	json_array_foreach(json_object_get(build, "phases"), i, phase)
	{
		const char *st = json_string_value(json_object_get(phase, "phaseStatus"));
		if (!st || !strcmp(st, "SUCCEEDED"))
			continue;
		strbuf_addf(out, " in phase %s",
		            json_string_value(json_object_get(phase, "phaseType")));
		json_t *ctx = json_array_get(json_object_get(phase, "contexts"), 0);
		const char *code = json_string_value(json_object_get(ctx, "statusCode"));
		const char *msg = json_string_value(json_object_get(ctx, "message"));
		if (code && *code)
			strbuf_addf(out, ": %s", code);
		if (msg && *msg)
			strbuf_addf(out, ": %s", msg);
		return;
	}
}

static json_t *build_summary(const json_t *build)
{
	json_t *o = json_object();
	const char *keys[] = { "id", "buildNumber", "buildStatus", "currentPhase", NULL };
	const char *names[] = { "buildId", "buildNumber", "buildStatus", "phase", NULL };
	for (int i = 0; keys[i]; i++) {
		json_t *v = json_object_get(build, keys[i]);
		if (v)
			json_object_set(o, names[i], v);
	}
	json_t *link = json_object_get(json_object_get(build, "logs"), "deepLink");
	if (link)
		json_object_set(o, "logs", link);
	int64_t d = build_duration_ms(build);
	if (d)
		json_object_set_new(o, "durationSeconds", json_real((double)d / 1000.0));
	return o;
}

/* The build has ended: the step ends with it. */
static void build_ended(struct build *b, const json_t *build, const char *status)
{
	struct poller *p = b->poller;
	if (p && !strcmp(status, "SUCCEEDED"))
		stats_learn(stats_find(p, b->project), build);
	bool ok = !strcmp(status, "SUCCEEDED");
	json_t *details = build_summary(build);
	if (!ok) {
		struct strbuf sb = STRBUF_INIT;
		strbuf_addf(&sb, "build %s %s", b->id, status);
		failed_phase(build, &sb);
		json_object_set_new(details, "error", json_string(sb.buf));
		strbuf_release(&sb);
	}
	struct attempt *a = b->a;
	build_free(b);
	attempt_ended(a, ok, details);
}

static void build_failed(struct build *b, json_t *details)
{
	struct attempt *a = b->a;
	build_free(b);
	attempt_ended(a, false, details);
}

static struct build *batch_take(struct poller *p, const char *id)
{
	for (size_t i = 0; i < p->nbatch; i++)
		if (p->batch[i] && !strcmp(p->batch[i]->id, id)) {
			struct build *b = p->batch[i];
			p->batch[i] = NULL;
			return b;
		}
	return NULL;
}

static void poll_done(void *arg, const struct aws_result *res)
{
	struct poller *p = arg;
	p->call = NULL;
	int64_t now = wall_clock_ms();
	if (res->error_code) {
		if (aws_error_retryable(res->error_code, res->status)) {
			p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : 1000;
			if (p->backoff_ms > SLOW_MAX_MS)
				p->backoff_ms = SLOW_MAX_MS;
			p->not_before_ms = now + p->backoff_ms;
			p->nbatch = 0;
			poller_arm(p);
			return;
		}
		/* Cannot watch these builds: their steps fail with the reason. */
		for (size_t i = 0; i < p->nbatch; i++)
			if (p->batch[i])
				build_failed(p->batch[i],
				             step_aws_error("CodeBuild BatchGetBuilds", res));
		p->nbatch = 0;
		if (p->builds)
			poller_arm(p);
		return;
	}
	p->backoff_ms = 0;
	json_t *o = aws_result_json(res);
	json_t *item;
	size_t i;
	json_array_foreach(json_object_get(o, "builds"), i, item)
	{
		const char *id = json_string_value(json_object_get(item, "id"));
		struct build *b = id ? batch_take(p, id) : NULL;
		if (!b)
			continue;
		b->missing_since_ms = 0;
		double start = json_number_value(json_object_get(item, "startTime"));
		if (start > 0)
			b->started_ms = (int64_t)(start * 1000.0);
		const char *status = json_string_value(json_object_get(item, "buildStatus"));
		if (status && strcmp(status, "IN_PROGRESS") != 0) {
			build_ended(b, item, status);
			continue;
		}
		/* A new phase is recorded: people see where the build is. */
		const char *phase = json_string_value(json_object_get(item, "currentPhase"));
		if (phase && strcmp(phase, b->phase_name) != 0) {
			snprintf(b->phase_name, sizeof(b->phase_name), "%s", phase);
			b->phase = phase_index(phase);
			json_t *phases = json_object_get(item, "phases");
			b->phase_start_ms = seconds_ms(json_object_get(
			    json_array_get(phases, json_array_size(phases) - 1), "startTime"));
			attempt_progress(b->a,
			                 json_pack("{ssss}", "buildId", b->id, "phase", phase));
		}
		b->next_poll_ms = now + next_interval(p, b, now);
	}
	json_decref(o);
	/* Builds CodeBuild does not know (yet): eventual consistency right after
	 * StartBuild; gone for good after a while. */
	for (size_t k = 0; k < p->nbatch; k++) {
		struct build *b = p->batch[k];
		if (!b)
			continue;
		if (!b->missing_since_ms)
			b->missing_since_ms = now;
		if (now - b->missing_since_ms > NOT_FOUND_MS) {
			build_failed(b, json_pack("{ss}", "error",
			                          "CodeBuild no longer knows the build (not found "
			                          "for 2 minutes)"));
			continue;
		}
		b->next_poll_ms = now + DEFAULT_MS;
	}
	p->nbatch = 0;
	if (pollers && p->builds)
		poller_arm(p);
}

static int cmp_due(const void *x, const void *y)
{
	const struct build *a = *(struct build *const *)x, *b = *(struct build *const *)y;
	return a->next_poll_ms < b->next_poll_ms ? -1 : a->next_poll_ms > b->next_poll_ms;
}

static void poll_now(uv_timer_t *t)
{
	struct poller *p = t->data;
	if (p->call || !p->builds)
		return;
	/* The builds due first; any room left goes to the next ones. */
	size_t n = 0;
	for (struct build *b = p->builds; b; b = b->next)
		n++;
	struct build **all = xcalloc(n, sizeof(*all));
	n = 0;
	for (struct build *b = p->builds; b; b = b->next)
		all[n++] = b;
	qsort(all, n, sizeof(*all), cmp_due);
	json_t *ids = json_array();
	p->nbatch = 0;
	for (size_t i = 0; i < n && p->nbatch < BATCH_MAX; i++) {
		p->batch[p->nbatch++] = all[i];
		json_array_append_new(ids, json_string(all[i]->id));
	}
	free(all);
	p->call = aws_json_call(p->aws, &p->target, "CodeBuild_20161006", "BatchGetBuilds",
	                        json_pack("{so}", "ids", ids), poll_done, p);
}

static void poller_arm(struct poller *p)
{
	if (p->call || !p->builds)
		return;
	int64_t due = INT64_MAX;
	for (struct build *b = p->builds; b; b = b->next)
		if (b->next_poll_ms < due)
			due = b->next_poll_ms;
	if (due < p->not_before_ms)
		due = p->not_before_ms;
	int64_t now = wall_clock_ms();
	uv_timer_start(&p->timer, poll_now, due > now ? (uint64_t)(due - now) : 0, 0);
}

/* ---- one build ---------------------------------------------------------------- */

static void build_free(struct build *b)
{
	poller_remove(b);
	if (b->call)
		aws_cancel(b->call);
	free(b->id);
	free(b);
}

static void stop_done(void *arg, const struct aws_result *res)
{
	struct build *b = arg;
	b->call = NULL;
	/* Whatever StopBuild said, the poller sees the build end (stopped, or
	 * ended on its own just before). */
	(void)res;
	if (b->poller) {
		b->next_poll_ms = wall_clock_ms();
		poller_arm(b->poller);
	}
}

static void send_stop(struct build *b)
{
	b->stop_sent = true;
	b->call = aws_json_call(b->aws, &b->target, "CodeBuild_20161006", "StopBuild",
	                        json_pack("{ss}", "id", b->id), stop_done, b);
}

static void start_done(void *arg, const struct aws_result *res)
{
	struct build *b = arg;
	b->call = NULL;
	if (res->error_code) {
		build_failed(b, step_aws_error("CodeBuild StartBuild", res));
		return;
	}
	json_t *o = aws_result_json(res);
	json_t *build = json_object_get(o, "build");
	const char *id = json_string_value(json_object_get(build, "id"));
	if (!id) {
		json_decref(o);
		build_failed(b, json_pack("{ss}", "error",
		                          "CodeBuild StartBuild answered without a build id"));
		return;
	}
	b->id = xstrdup(id);
	double start = json_number_value(json_object_get(build, "startTime"));
	b->started_ms = start > 0 ? (int64_t)(start * 1000.0) : wall_clock_ms();
	json_t *summary = build_summary(build);
	json_object_del(summary, "phase");
	json_object_del(summary, "buildStatus");
	json_decref(o);
	attempt_started(b->a, json_deep_copy(summary));
	if (b->nowait) {
		struct attempt *a = b->a;
		build_free(b);
		attempt_ended(a, true, summary);
		return;
	}
	json_decref(summary);
	watch(b);
	if (b->cancel)
		send_stop(b);
}

int codebuild_start(struct attempt *a, const struct attempt_info *info, const void *config,
                    void **ret_state, struct strbuf *err)
{
	const struct codebuild_config *c = config;
	bool nowait = info->step_plan->type->flags & STEP_NO_WAIT;
	struct aws *aws = step_aws_client(info, err);
	if (!aws)
		return SP_EINVAL;
	struct build *b = xcalloc(1, sizeof(*b));
	b->a = a;
	b->aws = aws;
	b->loop = info->svc->loop;
	b->nowait = nowait;
	b->phase = -1;
	b->project = c->project;
	step_aws_target(info, "codebuild", &b->target, b->session);
	*ret_state = b;
	const char *id = json_string_value(json_object_get(info->handle, "buildId"));
	if (id) {
		/* A later process: the build exists; watch it (NoWait: done). */
		b->id = xstrdup(id);
		if (nowait) {
			build_free(b);
			attempt_ended(a, true, json_deep_copy(info->handle));
			return 0;
		}
		b->started_ms = wall_clock_ms();
		watch(b);
		return 0;
	}
	if (!info->idempotency_key) {
		build_free(b);
		strbuf_addstr(err, "the attempt has no idempotency key (a malformed history)");
		return SP_EINVAL;
	}
	json_t *in = json_pack("{ssss}", "projectName", b->project, "idempotencyToken",
	                       info->idempotency_key);
	if (c->source_version)
		json_object_set_new(in, "sourceVersion", json_string(c->source_version));
	if (c->env) {
		json_t *list = json_array();
		for (size_t i = 0; i < c->nenv; i++)
			json_array_append_new(list,
			                      json_pack("{ssssss}", "name", c->env[i].name, "value",
			                                c->env[i].value, "type", c->env[i].type));
		json_object_set_new(in, "environmentVariablesOverride", list);
	}
	b->call = aws_json_call(b->aws, &b->target, "CodeBuild_20161006", "StartBuild", in,
	                        start_done, b);
	return 0;
}

void codebuild_cancel(struct attempt *a, void *state)
{
	(void)a;
	struct build *b = state;
	if (b->cancel)
		return;
	b->cancel = true;
	if (b->id && !b->stop_sent && !b->call)
		send_stop(b);
	/* With StartBuild in flight, start_done() sees cancel and stops it. */
}

void codebuild_detach(void *state)
{
	build_free(state);
}
