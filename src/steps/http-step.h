/*
 * http-step.h - the pure rules of the Http step type (src/steps/http.c),
 * exported for its unit tests: which statuses an `expectStatus` accepts,
 * JSON pointers into an answer, and whether a polled value matches an
 * `until` or `failWhen` rule. Nothing here does I/O.
 */
#ifndef STEPPY_STEPS_HTTP_STEP_H
#define STEPPY_STEPS_HTTP_STEP_H

#include "util/strbuf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define HTTP_STATUS_MAX_RANGES 16 /* items of one expectStatus list */

/* The statuses an expectStatus accepts: ranges lo..hi, both included. */
struct http_status_set {
	size_t n; /* ranges in use; 0 never happens once parsed */
	struct {
		int lo, hi;
	} r[HTTP_STATUS_MAX_RANGES];
};

/*
 * Parses one item of expectStatus written as text: "201" or a class "2xx"
 * (1xx to 5xx). Sets *lo and *hi and returns 0, or returns -1 when the text
 * is neither.
 */
int http_status_parse(const char *s, int *lo, int *hi);

/* True if status is in the set. */
bool http_status_in(const struct http_status_set *set, long status);

/* Appends the set for messages: "2xx", "200, 201 or 3xx". */
void http_status_describe(const struct http_status_set *set, struct strbuf *out);

/*
 * The value at an RFC 6901 JSON pointer in doc ("" is doc itself, "/a/0"
 * the first item of member a; ~0 and ~1 escape ~ and /), borrowed from doc,
 * or NULL when there is no such value or the pointer is malformed.
 */
json_t *http_json_pointer(json_t *doc, const char *pointer);

/*
 * True if value (may be NULL: absent, never matches) equals expected, or,
 * when expected is an array, one of its items. Numbers compare by value
 * (1 equals 1.0).
 */
bool http_value_matches(const json_t *value, const json_t *expected);

#endif
