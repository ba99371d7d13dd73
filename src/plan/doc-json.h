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

#endif
