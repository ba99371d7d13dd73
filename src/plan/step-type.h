/*
 * step-type.h - the interface every step type implements.
 *
 * A step type is one file in src/steps/ exporting one const struct
 * step_type, listed in registry.c. Plugins register theirs at start-up with
 * step_type_register(). The validator and `steppy plan` know step types only
 * through this table; the engine's hooks (start, poll, cancel) join it when
 * the engine lands.
 *
 * To add a step type: write src/steps/<name>.c with its field table,
 * validate and describe hooks; add one line to builtin_types in registry.c;
 * document its fields in docs/plan-format.md; add valid and invalid plans
 * to tests/plans/. Code outside src/steps/ knows a type only by its flags
 * and hooks, never by its name: give it the rule hooks it needs (approval
 * for STEP_DECISION, due_ms for a wait, program for STEP_LOCAL_CODE) and
 * the presentation hooks that say what its steps wait for and what work
 * they started (waiting_for, work_summary, outside_wait).
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
 * the next process finds it again instead of counting it interrupted */
#define STEP_REATTACH (1u << 7)

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

	/* ---- rules and presentation (code outside the step's file asks these,
	 * never the type's name) ---- */

	/*
	 * STEP_DECISION types: who may decide a step (a valid step, variables
	 * substituted), as a typed description the core's rule works on
	 * (core/approval.h). *out comes zeroed but for min_approvals 1 and
	 * self_approval true; the hook may allocate its approvers array (the
	 * rule owns it), the strings are borrowed from step.
	 */
	void (*approval)(const struct doc_node *step, struct approval_rule *out);
	/*
	 * STEP_INTERNAL types that wait for a time (Wait): when an attempt that
	 * starts at now (ms since the epoch) has waited enough, in ms since the
	 * epoch; a time already past ends it at once. The engine keeps it as a
	 * durable due time.
	 */
	int64_t (*due_ms)(const struct doc_node *step, int64_t now);
	/*
	 * STEP_LOCAL_CODE types whose steps run one program (Exec): the
	 * program (the first word of its command, borrowed from step), which a
	 * server's exec.allow lists; NULL when the step runs no one program. A
	 * type without the hook runs code no allow list can name.
	 */
	const char *(*program)(const struct doc_node *step);
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
