/*
 * log.h - the log of `steppy serve`: one line per event that matters, on
 * stderr (journald's stream under systemd), as text for people or as one
 * JSON object per line for log shippers (`--log-format json`).
 *
 * What is logged: releases started and ended, steps started and ended,
 * decisions and aborts, requests refused (401, 403), store trouble and
 * other errors. What never is: tokens (API, session, approval links),
 * Authorization headers, secret values. Callers pass only names, ids and
 * statuses; as a second line of defence every value registered with
 * log_set_secrets() is replaced by "****" wherever it appears in a line,
 * and control characters are escaped so one event stays one line.
 *
 * Thread-safe: each line is built apart and written with one call while
 * stderr is locked.
 */
#ifndef STEPPY_SERVER_LOG_H
#define STEPPY_SERVER_LOG_H

#include "core/engine.h"
#include "core/event.h"

#include <stddef.h>

enum log_format { LOG_TEXT, LOG_JSON };

/* Parses "text" or "json"; 0, or -1 if neither. */
int log_parse_format(const char *s, enum log_format *out);
/* Sets the format of every following line (default LOG_TEXT). Call before
 * the server's threads start. */
void log_set_format(enum log_format format);
/* Values never to print (NULL-terminated; borrowed until replaced or the
 * process ends; NULL clears). Call before the server's threads start. */
void log_set_secrets(const char *const *values);

/*
 * Writes one line: level ("info", "warning", "error"), event (a dotted name
 * such as "release.started"), message (for people; may be NULL), then
 * key, value pairs of strings ending with NULL (a NULL value skips its
 * key). Text:  steppy serve: EVENT: MESSAGE key=value key="a value"
 * JSON:        {"time":"...","level":"info","event":"...","message":"...","key":"value"}
 */
void log_event(const char *level, const char *event, const char *message, ...)
    __attribute__((sentinel));

/* log_event() with a message made by fmt and no fields. */
void log_eventf(const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The lines of a release's newly committed events (the server's runtime
 * observer calls it): release started/ended, step started/ended, decisions,
 * aborts. */
void log_release_events(const char *id, const struct exec_state *state, const struct event *events,
                        size_t n);

/* The path of a request as it may be logged: API paths as they are, others
 * (approval and personal links carry a token) only up to their first part.
 * Writes at most size bytes into out. */
void log_safe_path(const char *url, char *out, size_t size);

#endif
