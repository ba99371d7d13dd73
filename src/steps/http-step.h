/*
 * http-step.h - between the two files of the Http step type: its typed
 * config (made by http.c from the plan, read by the runner in http-run.c),
 * the runner's hooks, and the pure rules, exported for the unit tests too:
 * which statuses an `expectStatus` accepts, JSON pointers into an answer,
 * and whether a polled value matches an `until` or `failWhen` rule.
 */
#ifndef STEPPY_STEPS_HTTP_STEP_H
#define STEPPY_STEPS_HTTP_STEP_H

#include "util/strbuf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_STATUS_MAX_RANGES 16 /* items of one expectStatus list */

struct attempt;
struct attempt_info;

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

/* ---- the config and the runner -------------------------------------------- */

/* A poll rule, read once: where to look and what to compare. */
struct http_rule {
	const char *pointer; /* borrowed from the plan */
	json_t *equals;      /* owned: a value, or an array of values */
};

/* An Http step, read once when the plan is built. Strings are borrowed from
 * the plan unless marked owned. */
struct http_config {
	const char *method;
	const char *url;
	char **headers; /* owned: "Name: value" lines, nheaders of them */
	size_t nheaders;
	char **secrets; /* owned, NULL-terminated: secret header values (and their
	                   last word: the token of "Bearer TOKEN") */
	char *body;     /* owned: the body as sent, or NULL */
	size_t body_len;
	bool body_json;        /* body came as JSON: Content-Type application/json */
	bool has_content_type; /* the plan sets Content-Type itself */
	struct http_status_set expect;
	long request_timeout_ms;
	bool follow_redirects;
	bool idempotent; /* GET, HEAD, PUT, DELETE: safe to send again */
	bool poll;
	const char *poll_url; /* or NULL: the step's own URL (a GET step) */
	long interval_ms;
	struct http_rule until, fail_when; /* fail_when.equals NULL when absent */
};

/* The runner's hooks (step-type.h: start, cancel, detach). config is a
 * struct http_config. */
int http_run_start(struct attempt *a, const struct attempt_info *info, const void *config,
                   void **ret_state, struct strbuf *err);
void http_run_cancel(struct attempt *a, void *state);
void http_run_detach(void *state);

#endif
