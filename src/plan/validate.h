/*
 * validate.h - checks a parsed plan against the plan language.
 */
#ifndef STEPPY_PLAN_VALIDATE_H
#define STEPPY_PLAN_VALIDATE_H

#include "plan/doc.h"

#include <stdbool.h>

/*
 * Checks every rule of the plan language (docs/plan-format.md) on a parsed
 * document and adds one diagnostic per problem, all of them, in no
 * particular order (diag_list_sort() orders them). With bound false,
 * ${var.NAME} references are checked against the declared variables and
 * format checks skip strings that still hold references; with bound true
 * (after plan_bind()) every string is checked as final.
 *
 * Returns 0 if the plan is valid, SP_EINVAL if any error was added.
 */
int plan_validate(const struct doc *doc, bool bound, struct diag_list *diags);

#endif
