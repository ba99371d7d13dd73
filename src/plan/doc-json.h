/*
 * doc-json.h - converts doc trees to jansson values, for JSON output and
 * for storing a bound plan with an execution.
 */
#ifndef STEPPY_PLAN_DOC_JSON_H
#define STEPPY_PLAN_DOC_JSON_H

#include "plan/doc.h"

#include <jansson.h>

/* Returns a new reference to the value; never NULL. */
json_t *doc_to_json(const struct doc_node *node);

/*
 * Masks secrets in a plan as JSON, in place, for output: every object that
 * says "secret": true gets "value": "****" (CodeBuild environment overrides
 * marked secret).
 */
void plan_json_redact(json_t *value);

/*
 * Masks the secrets of an ExecutionStarted event's data, in place, for
 * output: its plan (plan_json_redact()) and the variables whose values went
 * into a secret value.
 */
void execution_started_redact(json_t *data);

/*
 * Takes the secrets out of an ExecutionStarted event's data, in place, for
 * storing: what execution_started_redact() masks becomes "****". Returns
 * what was taken ({"values": [...], "variables": {...}}, a new reference),
 * or NULL when the data holds no secret.
 */
json_t *execution_started_seal(json_t *data);

/*
 * Puts back what execution_started_seal() took, in place. Returns 0, or -1
 * (data unchanged in part) when sealed does not fit the data.
 */
int execution_started_unseal(json_t *data, const json_t *sealed);

#endif
