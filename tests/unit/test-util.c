/*
 * test-util.c - strbuf, arena, suggestions, RFC 3339 times, durations, UTF-8.
 */
#include "unit.h"

#include "util/arena.h"
#include "util/error.h"
#include "util/strbuf.h"
#include "util/strmap.h"
#include "util/suggest.h"
#include "util/timefmt.h"
#include "util/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_strbuf_grows_and_stays_terminated(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	assert_string_equal(sb.buf, "");
	for (int i = 0; i < 1000; i++)
		assert_int_equal(strbuf_addf(&sb, "%d,", i % 10), 0);
	assert_int_equal(sb.len, 2000);
	assert_int_equal(sb.buf[sb.len], '\0');
	strbuf_truncate(&sb, 4);
	assert_string_equal(sb.buf, "0,1,");
	size_t len;
	char *s = strbuf_detach(&sb, &len);
	assert_int_equal(len, 4);
	assert_string_equal(sb.buf, "");
	free(s);
	strbuf_release(&sb);
}

static void test_strbuf_cap_refuses_and_keeps_content(void **state)
{
	(void)state;
	struct strbuf sb;
	strbuf_init(&sb, 8);
	assert_int_equal(strbuf_addstr(&sb, "12345"), 0);
	assert_int_equal(strbuf_addstr(&sb, "6789"), SP_ETOOBIG);
	assert_string_equal(sb.buf, "12345");
	assert_int_equal(strbuf_addf(&sb, "%s", "abc"), 0);
	assert_string_equal(sb.buf, "12345abc");
	assert_int_equal(strbuf_addch(&sb, 'x'), SP_ETOOBIG);
	strbuf_release(&sb);
}

static void test_arena_aligns_and_handles_big_blocks(void **state)
{
	(void)state;
	struct arena a = ARENA_INIT;
	for (int i = 0; i < 10000; i++) {
		void *p = arena_alloc(&a, (size_t)(i % 37) + 1);
		assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
	}
	char *big = arena_alloc(&a, 1 << 20);
	memset(big, 'x', 1 << 20);
	char *s = arena_strdup(&a, "after big");
	assert_string_equal(s, "after big");
	arena_release(&a);
	assert_null(a.chunks);
}

static void test_suggestions(void **state)
{
	(void)state;
	const char *const types[] = {
		"CodeBuild", "CodeBuildNoWait", "Human", "Wait", "Exec", NULL
	};
	assert_string_equal(suggest_closest("CodeBuld", types), "CodeBuild");
	assert_string_equal(suggest_closest("codebuild", types), "CodeBuild");
	assert_string_equal(suggest_closest("Wiat", types), "Wait"); /* a swap is one edit */
	assert_string_equal(suggest_closest("CodeBuildNoWiat", types), "CodeBuildNoWait");
	assert_null(suggest_closest("Deploy", types));
	assert_null(suggest_closest("", types));
	assert_int_equal(edit_distance("kitten", "sitting"), 3);
	assert_int_equal(edit_distance("ab", "ba"), 1);
	assert_int_equal(edit_distance("", "abc"), 3);
}

static void expect_time(const char *s, int64_t ms)
{
	int64_t got;
	const char *reason = NULL;
	if (rfc3339_parse(s, &got, &reason) != 0)
		fail_msg("%s: %s", s, reason);
	assert_int_equal(got, ms);
}

static void expect_bad_time(const char *s, const char *reason_part)
{
	int64_t got;
	const char *reason = NULL;
	assert_int_equal(rfc3339_parse(s, &got, &reason), SP_EINVAL);
	if (!strstr(reason, reason_part))
		fail_msg("%s: reason \"%s\" lacks \"%s\"", s, reason, reason_part);
}

static void test_rfc3339(void **state)
{
	(void)state;
	expect_time("1970-01-01T00:00:00Z", 0);
	expect_time("2026-11-27T09:30:00Z", 1795771800000);
	expect_time("2026-11-27t10:30:00+01:00", 1795771800000);
	expect_time("2026-11-27T04:00:00.250-05:30", 1795771800250);
	expect_time("2024-02-29T00:00:00z", 1709164800000);
	expect_time("2016-12-31T23:59:60Z", 1483228799000); /* leap second */
	expect_time("1969-12-31T23:59:59.5Z", -500);
	expect_bad_time("2026-13-01T00:00:00Z", "month");
	expect_bad_time("2026-04-31T00:00:00Z", "day does not exist");
	expect_bad_time("2025-02-29T00:00:00Z", "day does not exist");
	expect_bad_time("2026-11-27", "time of day");
	expect_bad_time("2026-11-27T09:30:00", "offset is missing");
	expect_bad_time("2026-11-27T24:00:00Z", "out of range");
	expect_bad_time("2026-11-27T09:30:00+25:00", "offset is out of range");
	expect_bad_time("2026-11-27T09:30:00Zjunk", "unexpected text");
	expect_bad_time("27/11/2026", "expected an RFC 3339 time");
	expect_bad_time("2026-11-27T09:30:00.Z", "decimal point");
}

static void test_rfc3339_format_round_trips(void **state)
{
	(void)state;
	const int64_t samples[] = { 0, 1795771800000, 1795771800250, -500, 951782400000 };
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		struct strbuf sb = STRBUF_INIT;
		rfc3339_format(&sb, samples[i]);
		expect_time(sb.buf, samples[i]);
		strbuf_release(&sb);
	}
	struct strbuf sb = STRBUF_INIT;
	rfc3339_format(&sb, 1795771800250);
	assert_string_equal(sb.buf, "2026-11-27T09:30:00.250Z");
	strbuf_release(&sb);
}

static void test_durations(void **state)
{
	(void)state;
	static const struct {
		int64_t s;
		const char *text;
	} cases[] = { { 0, "0s" },          { 45, "45s" },         { 90, "1m30s" }, { 3600, "1h" },
		      { 31536000, "365d" }, { 93784, "1d2h3m4s" }, { -60, "-1m" } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strbuf sb = STRBUF_INIT;
		duration_format(&sb, cases[i].s);
		assert_string_equal(sb.buf, cases[i].text);
		strbuf_release(&sb);
	}
}

static void test_utf8(void **state)
{
	(void)state;
	assert_int_equal(utf8_seq_len((const unsigned char *)"a", 1), 1);
	assert_int_equal(utf8_seq_len((const unsigned char *)"\xC3\xA9", 2), 2);
	assert_int_equal(utf8_seq_len((const unsigned char *)"\xF0\x9F\x9A\x80", 4), 4);
	assert_int_equal(utf8_seq_len((const unsigned char *)"\xC0\xAF", 2), 0);     /* overlong */
	assert_int_equal(utf8_seq_len((const unsigned char *)"\xED\xA0\x80", 3), 0); /* surrogate */
	assert_int_equal(utf8_seq_len((const unsigned char *)"\xF4\x90\x80\x80", 4), 0);
	assert_int_equal(utf8_seq_len((const unsigned char *)"\xE2\x82", 2), 0); /* cut */
	char s[] = "ok\xFF\xC3\xA9\xC3";
	utf8_sanitize(s);
	assert_string_equal(s, "ok?\xC3\xA9?");
}

static void test_strmap(void **state)
{
	(void)state;
	struct strmap map = STRMAP_INIT;
	assert_null(strmap_get(&map, "x", 1));
	static char keys[5000][8];
	for (int i = 0; i < 5000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		assert_null(strmap_put(&map, keys[i], strlen(keys[i]), keys[i]));
	}
	assert_int_equal(map.len, 5000);
	for (int i = 0; i < 5000; i++)
		assert_ptr_equal(strmap_get(&map, keys[i], strlen(keys[i])), keys[i]);
	/* A put of an existing key returns the old value and keeps one entry. */
	assert_ptr_equal(strmap_put(&map, "k7", 2, keys[0]), keys[7]);
	assert_ptr_equal(strmap_get(&map, "k7", 2), keys[0]);
	assert_int_equal(map.len, 5000);
	/* Keys are byte strings: a prefix is another key. */
	assert_null(strmap_get(&map, "k1", 1));
	strmap_release(&map);
	assert_null(strmap_get(&map, "k1", 2));
}

static void test_error_names(void **state)
{
	(void)state;
	assert_string_equal(sp_errname(SP_ENOMEM), "SP_ENOMEM");
	assert_string_equal(sp_strerror(SP_ETOOBIG), "input exceeds a size limit");
	assert_string_equal(sp_strerror(0), "success");
	assert_string_equal(sp_errname(-999), "SP_UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strbuf_grows_and_stays_terminated),
		cmocka_unit_test(test_strbuf_cap_refuses_and_keeps_content),
		cmocka_unit_test(test_arena_aligns_and_handles_big_blocks),
		cmocka_unit_test(test_suggestions),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_rfc3339_format_round_trips),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_strmap),
		cmocka_unit_test(test_error_names),
	};
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
