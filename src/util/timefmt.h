/*
 * timefmt.h - RFC 3339 timestamps and human durations.
 *
 * Pure functions (no time zone database, no locale), and the one place that
 * reads the wall clock.
 */
#ifndef STEPPY_TIMEFMT_H
#define STEPPY_TIMEFMT_H

#include "util/strbuf.h"

#include <stdint.h>

/*
 * Parses an RFC 3339 date-time ("2026-11-27T09:30:00Z",
 * "2026-11-27t09:30:00.250+01:00"): the separator is T or t, the offset Z,
 * z or +hh:mm / -hh:mm, fractions of a second are allowed and truncated to
 * milliseconds. Calendar ranges are checked (no 31 April, 29 February only
 * in leap years). A leap second (:60) counts as :59.
 *
 * Returns 0 and sets *ret_ms to milliseconds since the Unix epoch (UTC), or
 * SP_EINVAL and puts the reason in *ret_reason (a static string).
 */
int rfc3339_parse(const char *s, int64_t *ret_ms, const char **ret_reason);

/* Appends ms since the epoch as "2026-11-27T09:30:00Z" (".250" if needed). */
void rfc3339_format(struct strbuf *out, int64_t ms);

/* Appends a duration in seconds as "365d", "1h30m", "45s", "0s". */
void duration_format(struct strbuf *out, int64_t seconds);

/* Now, in milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t wall_clock_ms(void);

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
