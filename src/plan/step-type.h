/*
 * step-type.h - the interface every step type implements.
 *
 * A step type is one unit: one file in src/steps/ (two when it is long,
 * e.g. codebuild.c and codebuild-run.c) exporting one const struct
 * step_type, listed in registry.c. Its table holds everything about the
 * type: the fields and checks of the plan language (fields, validate), how
 * `steppy plan` describes it (describe), the typed configuration read once
 * when a plan is built (bind, free_config), and how it runs (start,
 * cancel, reap, detach: the runner, whose side of the contract with the
 * runtime is runtime/runner.h). Code outside the type's own files never
 * names a type: it asks the STEP_* flags and calls the hooks. Plugins
 * register their types at start-up with step_type_register().
 *
 * Adding a step type (docs/ARCHITECTURE.md, "Adding a step type"):
 *   1. write src/steps/<name>.c: a field table, validate and describe;
 *      a struct <name>_config with bind and free_config; start and, as the
 *      work needs, cancel, reap, detach; the rule hooks it needs (approval
 *      for STEP_DECISION, due_ms for a wait, program for STEP_LOCAL_CODE)
 *      and the presentation hooks that say what its steps wait for and
 *      what work they started (waiting_for, work_summary, outside_wait);
 *      one const struct step_type with its STEP_* flags;
 *   2. add one row to BUILTIN_STEP_TYPES in src/steps/registry.c;
 *   3. document its fields in docs/plan-format.md; add valid and invalid
 *      plans to tests/plans/ and a runner test (tests/unit, tests/cli).
 * tests/extend/ proves it: a Jenkins-like type from one file and one row.
 */
#ifndef STEPPY_PLAN_STEP_TYPE_H
#define STEPPY_PLAN_STEP_TYPE_H

#include "plan/schema.h"
#include "util/strbuf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Capabilities of a step type (in the style of curl's PROTOPT_*): code
 * outside a step type's file asks these, never the type's name.
 */
#define STEP_AWS       (1u << 0) /* calls AWS: takes region and roleArn */
#define STEP_RETRYABLE (1u << 1) /* a failed attempt may be retried */
#define STEP_NO_WAIT   (1u << 2) /* ends once its remote work has started */
/* its own fields say how long it takes (Wait): defaults.timeoutSeconds does
 * not apply, only a timeoutSeconds of the step itself */
#define STEP_OWN_DURATION (1u << 3)
/* runs programs or code on the machine of steppy, as its user (Exec); a
 * server runs such steps only when its configuration allows (exec_policy) */
#define STEP_LOCAL_CODE (1u << 4)
/* run by the engine itself, with no runner: a durable due time (Wait) or
 * people's decisions (Human) */
#define STEP_INTERNAL (1u << 5)
/* waits for people to approve or reject it (Human): decisions, approval
 * links and their channels apply to it */
#define STEP_DECISION (1u << 6)
/* its work outlives the process (an AWS build): after a crash or a stop
 * the next process calls start() again for the attempt in flight (with the
 * StepStarted handle, or none and the same idempotency key) instead of
 * reaping it and counting it interrupted; start() never starts it twice */
#define STEP_REATTACH (1u << 7)
/* sends a message to the channels it names (Notify): besides configured
 * channels, those may be the built-in ones ("terminal", "log", SNS ARNs) */
#define STEP_SENDS (1u << 8)
/* its output may echo what it sent (an HTTP answer quoting a header): the
 * runtime hands it the plan's secret values to mask, as for STEP_LOCAL_CODE
 * (attempt_info.secret_values) */
#define STEP_OUTPUT_ECHOES (1u << 9)

struct attempt;       /* the runtime's record of one attempt (runtime/runner.h) */
struct attempt_info;  /* what an attempt is, and the services it may use */
struct approval_rule; /* core/approval.h: who may decide a step */

/* What presentation hooks know of a step's current attempt (all borrowed). */
struct step_view {
	bool cancelling;        /* its work is being stopped */
	const json_t *work;     /* its StepStarted data (the handle of its work), or NULL */
	const json_t *progress; /* its latest Notice (a build's phase ...), or NULL */
};

struct step_type {
	const char *name;                /* as written in plans: "CodeBuild" */
	const char *summary;             /* one line, for help and docs */
	unsigned flags;                  /* STEP_* */
	const struct field_spec *fields; /* type-specific fields; ends with { NULL } */
	/*
	 * Checks what the field table cannot express (exclusive fields,
	 * formats that depend on other fields). The step's common fields and
	 * every field's type have been checked already. May be NULL.
	 */
	void (*validate)(struct vctx *v, const struct doc_node *step);
	/*
	 * Appends what the step will do as lines made with describe_line(),
	 * for reviewers reading `steppy plan`. The step is valid and its
	 * variables are substituted.
	 */
	void (*describe)(const struct doc_node *step, struct strbuf *out);

	/* ---- configuration: read once, when the plan is built ---- */
	/*
	 * Reads a valid, bound step into the type's own config struct (struct
	 * codebuild_config ...), so that start() never reads fields by name.
	 * The plan owns the result (plan_step.config) and frees it with
	 * free_config(); strings in it may point into step, which the plan
	 * keeps as long. Cannot fail: the step has been validated. May be
	 * NULL (the config is then NULL).
	 */
	void *(*bind)(const struct doc_node *step);
	/* Frees what bind() returned. Accepts NULL. May be NULL if bind is. */
	void (*free_config)(void *config);

	/* ---- the runner: NULL for STEP_INTERNAL types, required otherwise ---- */
	/*
	 * Starts the work of an attempt, whose StepScheduled is committed.
	 * config is the step's bind() result (borrowed: valid until the attempt
	 * has ended or been detached). Sets *ret_state to what cancel() and
	 * detach() get. Reports through attempt_started() and attempt_ended()
	 * (runtime/runner.h), which it may call before returning. Returns 0, or
	 * a negative SP_E* code with a message in err, having reported nothing
	 * (the attempt then fails at once). With STEP_REATTACH it is called
	 * again by a later process for an attempt in flight (info->reattaching).
	 */
	int (*start)(struct attempt *a, const struct attempt_info *info, const void *config,
	             void **ret_state, struct strbuf *err);
	/*
	 * Asks the work to stop; may be called more than once. The runner
	 * still calls attempt_ended() once it has stopped (possibly at once).
	 */
	void (*cancel)(struct attempt *a, void *state);
	/*
	 * After a crash, kills what a dead process left of an attempt, from
	 * the handle its StepStarted recorded (a leftover process group); the
	 * attempt is then counted as interrupted. May be NULL. Not called for
	 * STEP_REATTACH types.
	 */
	void (*reap)(const json_t *handle);
	/*
	 * The process stops: forgets the work without stopping it and without
	 * reporting (state is freed; the attempt stays in flight in the
	 * history). May be NULL: the work is then cancelled.
	 */
	void (*detach)(void *state);
	/* ---- rules and presentation (code outside the step's file asks these,
	 * never the type's name) ---- */

	/*
	 * STEP_DECISION types: who may decide a step, as the typed description
	 * the core's rule works on (core/approval.h), held in the step's config
	 * (its bind() result; never NULL for these types). Borrowed.
	 */
	const struct approval_rule *(*approval)(const void *config);
	/*
	 * STEP_INTERNAL types that wait for a time (Wait): when an attempt that
	 * starts at now (ms since the epoch) has waited enough, in ms since the
	 * epoch, from the step's config (its bind() result); a time already
	 * past ends it at once. The engine keeps it as a durable due time.
	 */
	int64_t (*due_ms)(const void *config, int64_t now);
	/*
	 * STEP_LOCAL_CODE types whose steps run one program (Exec): the
	 * program (the first word of its command) from the step's config (its
	 * bind() result), which a server's exec.allow lists; NULL when the
	 * step runs no one program. A type without the hook runs code no allow
	 * list can name.
	 */
	const char *(*program)(const void *config);
	/*
	 * What a started attempt waits for, appended to out for people: "approval
	 * by alice, bob", "its timer", "build ID in phase BUILD", "its command
	 * to end". Appends nothing to leave it to the generic text ("its work
	 * to end", "its work to stop" while cancelled). May be NULL.
	 */
	void (*waiting_for)(const struct doc_node *step, const struct step_view *view,
	                    struct strbuf *out);
	/*
	 * The remote work an attempt started, from the data of its StepStarted
	 * event (its handle): a one-line summary ("build ID #N", "pipeline NAME
	 * execution ID"), or with brief only what names the work ("ID",
	 * "NAME ID"). Appends nothing when the handle names no remote work.
	 * Links to it go in the handle's "logs" field. May be NULL.
	 */
	void (*work_summary)(const json_t *work, bool brief, struct strbuf *out);
	/*
	 * The data of a Notice of a started attempt that asks something of
	 * people outside steppy (a pipeline waiting at a manual approval that
	 * steppy does not give): appends the question ("pipeline NAME waits for
	 * the manual approval ..."), then, after a newline each, the lines that
	 * say how to answer it; with brief, one line for a table. Appends
	 * nothing when the notice asks nothing. May be NULL.
	 */
	void (*outside_wait)(const struct doc_node *step, const json_t *notice, bool brief,
	                     struct strbuf *out);
};

/* Appends one "      label       text" line of a step description; the lines
 * of a multi-line text after the first are indented to line up with it. */
void describe_line(struct strbuf *out, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns the step type called name, or NULL. */
const struct step_type *step_type_find(const char *name);

/*
 * Adds a step type (for plugins). The struct must outlive the process'
 * use of plans. Returns 0, SP_EINVAL if the name is taken, or SP_ETOOBIG
 * past the registry's capacity.
 */
int step_type_register(const struct step_type *type);

/* Fills names (NULL-terminated, at most max - 1 entries) with every type's name. */
void step_type_names(const char **names, size_t max);

/* Calls fn for every registered type, built-in ones first. */
void step_type_foreach(void (*fn)(const struct step_type *type, void *arg), void *arg);

/* The string value of field name in a step, or NULL if absent or not a string. */
const char *step_string(const struct doc_node *step, const char *name);

#endif
