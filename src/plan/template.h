/*
 * template.h - ${var.NAME} references in plan strings.
 *
 * A string field may refer to a plan variable as ${var.NAME}; "$${" writes
 * a literal "${". Nothing else inside ${...} is defined yet, so anything
 * else is an error rather than text that silently stays as it is.
 */
#ifndef STEPPY_PLAN_TEMPLATE_H
#define STEPPY_PLAN_TEMPLATE_H

#include "util/strbuf.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Called for each reference with the variable name (not NUL-terminated).
 * Appends the value to out (when expanding) and returns 0, or returns a
 * negative code to stop.
 */
typedef int (*template_ref_fn)(const char *name, size_t len, struct strbuf *out, void *arg);

/*
 * Copies s to out with every reference replaced through ref. On a
 * malformed reference returns SP_EINVAL and sets *ret_reason (static text).
 * A negative code from ref is returned as it is.
 */
int template_expand(const char *s, struct strbuf *out, template_ref_fn ref, void *arg,
                    const char **ret_reason);

/*
 * Reads s as template_expand would, without expanding: sets *ret_refs if it
 * holds any "${" that starts a reference (well formed or not), and
 * *ret_escapes if it holds any "$${" (a literal "${").
 */
void template_scan(const char *s, bool *ret_refs, bool *ret_escapes);

#endif
