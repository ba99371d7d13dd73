/*
 * plan.h - a release plan ready to show or run.
 *
 * The pipeline from file to plan:
 *   doc_load()       text -> doc tree (syntax errors)
 *   plan_validate()  every rule, every error at once
 *   plan_bind()      ${var.NAME} -> values given at run time or defaults
 *   plan_validate()  again with bound = true: formats of substituted values
 *   plan_build()     doc -> struct plan, with defaults applied
 * plan_load() does all of it.
 *
 * Ownership: a struct plan owns its bound document and each step's typed
 * config (step_type.bind); every string in the
 * plan points into it and lives until plan_free().
 */
#ifndef STEPPY_PLAN_PLAN_H
#define STEPPY_PLAN_PLAN_H

#include "plan/doc.h"
#include "plan/step-type.h"

#include <stdbool.h>
#include <stdint.h>

struct retry_policy {
	int64_t max_attempts;     /* total attempts, the first included; 1 = no retry */
	int64_t interval_seconds; /* before the second attempt */
	double backoff_rate;      /* interval multiplier for each later attempt */
};

struct plan_step {
	const char *name;
	const struct step_type *type;
	const struct doc_node *node; /* the step object, variables substituted */
	int64_t timeout_seconds;     /* 0: no timeout */
	struct retry_policy retry;
	const char *region;      /* AWS steps: NULL means from the environment */
	const char *role_arn;    /* AWS steps: NULL means the default credentials */
	const char *external_id; /* AWS steps with role_arn: STS external id, or NULL */
	void *config;            /* owned: type->bind(node), or NULL; see step-type.h */
};

struct plan_stage {
	const char *name;
	bool fail_fast;
	size_t nsteps;
	struct plan_step *steps;
};

struct plan_variable {
	const char *name;
	const char *value;       /* bound value */
	bool from_default;       /* value came from the plan's default */
	const char *description; /* or NULL */
};

struct plan {
	struct doc *doc;         /* owned: the bound document */
	const char *name;        /* or NULL */
	const char *description; /* or NULL */
	const char *environment; /* environmentName, or NULL */
	size_t nstages;
	struct plan_stage *stages;
	size_t nvariables;
	struct plan_variable *variables;
};

/* A value given on the command line: --var NAME=VALUE. */
struct var_value {
	const char *name;
	const char *value;
};

/*
 * Substitutes variables in a valid document: values from vals, else the
 * declared defaults. Returns 0 and a new document in *ret_doc (caller
 * frees), or SP_EUSAGE with the reason in err: a value given for a
 * variable the plan does not declare, or a variable with neither value nor
 * default.
 */
int plan_bind(const struct doc *doc, const struct var_value *vals, size_t nvals,
              struct doc **ret_doc, struct strbuf *err);

/*
 * The first variable doc declares that has neither a value in vals nor a
 * default (borrowed from doc), or NULL: what plan_bind() refuses, for the
 * front ends to say how to give it (--var, the API's "variables").
 */
const char *plan_unbound_variable(const struct doc *doc, const struct var_value *vals,
                                  size_t nvals);

/* Builds the plan from a bound, valid document, taking ownership of it. */
struct plan *plan_build(struct doc *bound_doc);

/*
 * Loads path and runs the whole pipeline above. Returns 0 and *ret_plan;
 * SP_EIO / SP_ETOOBIG (unreadable), SP_ESYNTAX or SP_EINVAL (diagnostics
 * added; *ret_doc set to the parsed document when there is one, so they
 * can be shown with source lines; caller frees), or SP_EUSAGE (variables;
 * reason in err).
 */
int plan_load(const char *path, const struct var_value *vals, size_t nvals, struct plan **ret_plan,
              struct doc **ret_doc, struct diag_list *diags, struct strbuf *err);

/* plan_load() after the parse: for a document read from elsewhere (S3). */
int plan_from_doc(const struct doc *doc, const struct var_value *vals, size_t nvals,
                  struct plan **ret_plan, struct diag_list *diags, struct strbuf *err);

/* Accepts NULL. */
void plan_free(struct plan *plan);

/* The 12-digit account of an IAM role ARN, copied into buf (13 bytes), or NULL. */
const char *role_arn_account(const char *role_arn, char *buf);

#endif
