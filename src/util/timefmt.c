/*
 * timefmt.c - RFC 3339 parsing and formatting, durations (see timefmt.h).
 */
#include "util/timefmt.h"

#include "util/error.h"

#include <string.h>
#include <time.h>

int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm: counts days in 400-year eras from 0000-03-01. */
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const int64_t yoe = y - era * 400;
	const int64_t mp = (m + 9) % 12;
	const int64_t doy = (153 * mp + 2) / 5 + d - 1;
	const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const int64_t doe = z - era * 146097;
	const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const int64_t mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* Reads exactly n digits at *p into *out; advances *p. */
static int digits(const char **p, int n, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (unsigned)(c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

#define FAIL(msg)                                                                                  \
	do {                                                                                       \
		*ret_reason = msg;                                                                 \
		return SP_EINVAL;                                                                  \
	} while (0)

int rfc3339_parse(const char *s, int64_t *ret_ms, const char **ret_reason)
{
	const char *p = s;
	unsigned year, mon, day, hour, min, sec, ms = 0;
	const char *shape = "expected an RFC 3339 time such as 2026-11-27T09:30:00Z";

	if (digits(&p, 4, &year) || *p++ != '-' || digits(&p, 2, &mon) || *p++ != '-' ||
	    digits(&p, 2, &day))
		FAIL(shape);
	if (*p != 'T' && *p != 't')
		FAIL(*p == '\0' ? "a time of day and an offset are missing (add e.g. T09:30:00Z)"
		                : shape);
	p++;
	if (digits(&p, 2, &hour) || *p++ != ':' || digits(&p, 2, &min) || *p++ != ':' ||
	    digits(&p, 2, &sec))
		FAIL(shape);
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			FAIL("a decimal point must be followed by digits");
		unsigned scale = 100;
		while (*p >= '0' && *p <= '9') {
			ms += (unsigned)(*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	int offset_min = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		unsigned oh, om;
		p++;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
			FAIL("the offset must be Z or +hh:mm / -hh:mm");
		if (oh > 23 || om > 59)
			FAIL("the offset is out of range");
		offset_min = sign * (int)(oh * 60 + om);
	} else {
		FAIL("the time zone offset is missing (add Z for UTC, or e.g. +01:00)");
	}
	if (*p != '\0')
		FAIL("unexpected text after the time");
	if (mon < 1 || mon > 12)
		FAIL("the month is out of range");
	if (day < 1 || day > days_in_month(year, mon))
		FAIL("the day does not exist in that month");
	if (hour > 23 || min > 59 || sec > 60)
		FAIL("the time of day is out of range");
	if (sec == 60)
		sec = 59;

	int64_t days = days_from_civil(year, mon, day);
	int64_t secs = days * 86400 + hour * 3600 + min * 60 + sec - (int64_t)offset_min * 60;
	*ret_ms = secs * 1000 + ms;
	return 0;
}

void rfc3339_format(struct strbuf *out, int64_t ms)
{
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int64_t rem = ms - secs * 1000;
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t sod = secs - days * 86400;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	strbuf_addf(out, "%04lld-%02u-%02uT%02lld:%02lld:%02lld", (long long)y, m, d,
	            (long long)(sod / 3600), (long long)(sod / 60 % 60), (long long)(sod % 60));
	if (rem)
		strbuf_addf(out, ".%03lld", (long long)rem);
	strbuf_addch(out, 'Z');
}

void duration_format(struct strbuf *out, int64_t seconds)
{
	if (seconds < 0) {
		strbuf_addch(out, '-');
		seconds = seconds == INT64_MIN ? INT64_MAX : -seconds;
	}
	if (seconds == 0) {
		strbuf_addstr(out, "0s");
		return;
	}
	static const struct {
		int64_t size;
		char unit;
	} units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (seconds >= units[i].size) {
			strbuf_addf(out, "%lld%c", (long long)(seconds / units[i].size),
			            units[i].unit);
			seconds %= units[i].size;
		}
	}
}

int64_t wall_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
