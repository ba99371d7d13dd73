/*
 * test-parse.c - the two readers: values, positions, escapes, YAML typing,
 * aliases, limits, and the syntax chosen for a file.
 */
#include "unit.h"

#include "plan/doc.h"
#include "plan/limits.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct doc *parse_ok(const char *text, enum doc_syntax syntax)
{
	struct diag_list dl = DIAG_LIST_INIT;
	struct doc *doc = NULL;
	int r = doc_parse("t", text, strlen(text), syntax, &doc, &dl);
	if (r != 0)
		fail_msg("parse failed: %s", dl.len ? dl.items[0].message : "?");
	diag_list_release(&dl);
	return doc;
}

/* Parses text expecting a syntax error at line:col whose message contains part. */
static void parse_fails(const char *text, enum doc_syntax syntax, unsigned line, unsigned col,
                        const char *part)
{
	struct diag_list dl = DIAG_LIST_INIT;
	struct doc *doc = NULL;
	int r = doc_parse("t", text, strlen(text), syntax, &doc, &dl);
	assert_int_equal(r, SP_ESYNTAX);
	assert_null(doc->root);
	assert_int_equal(dl.len, 1);
	if (dl.items[0].pos.line != line || dl.items[0].pos.col != col ||
	    !strstr(dl.items[0].message, part))
		fail_msg("%u:%u %s; expected %u:%u ...%s...", (unsigned)dl.items[0].pos.line,
		         (unsigned)dl.items[0].pos.col, dl.items[0].message, line, col, part);
	assert_null(dl.items[0].pointer);
	diag_list_release(&dl);
	doc_free(doc);
}

static void test_jsonc_values_and_positions(void **state)
{
	(void)state;
	struct doc *doc = parse_ok("// leading comment\n"
	                           "{ /* inline */ \"a\": [1, -2.5e1, true, null],\n"
	                           "  \"b\": \"x\\u00e9\\ud83d\\ude80\\n\", // trailing\n"
	                           "  \"c\": {} }\n",
	                           DOC_JSONC);
	const struct doc_node *root = doc->root;
	assert_int_equal(root->kind, DOC_OBJECT);
	assert_int_equal(root->pos.line, 2);
	assert_int_equal(root->pos.col, 1);
	const struct doc_member *a = doc_member(root, "a");
	assert_int_equal(a->key_pos.line, 2);
	assert_int_equal(a->key_pos.col, 16);
	assert_int_equal(a->value->u.array.len, 4);
	const struct doc_node *one = a->value->u.array.items[0];
	assert_true(one->u.number.is_integer);
	assert_int_equal(one->u.number.integer, 1);
	assert_int_equal(one->pos.col, 22);
	const struct doc_node *f = a->value->u.array.items[1];
	assert_true(f->u.number.value == -25.0);
	assert_true(f->u.number.is_integer); /* whole, though written with an exponent */
	assert_int_equal(f->u.number.integer, -25);
	assert_int_equal(a->value->u.array.items[2]->kind, DOC_BOOL);
	assert_int_equal(a->value->u.array.items[3]->kind, DOC_NULL);
	const struct doc_node *b = doc_get(root, "b");
	assert_string_equal(b->u.string.s, "x\xC3\xA9\xF0\x9F\x9A\x80\n");
	assert_int_equal(b->u.string.len, 8);
	assert_int_equal(b->pos.line, 3);
	assert_int_equal(b->pos.col, 8);
	assert_int_equal(doc_get(root, "c")->u.object.len, 0);
	doc_free(doc);
}

static void test_jsonc_columns_count_characters(void **state)
{
	(void)state;
	/* "é" and "🚀" are one column each, though two and four bytes. */
	struct doc *doc = parse_ok("{\"é🚀\": 1, \"k\": 2}", DOC_JSONC);
	assert_int_equal(doc_member(doc->root, "k")->key_pos.col, 11);
	doc_free(doc);
	/* A byte order mark is not a column, for the readers nor for the UTF-8 check. */
	doc = parse_ok("\xEF\xBB\xBF{\"k\": 2}", DOC_JSONC);
	assert_int_equal(doc_member(doc->root, "k")->key_pos.col, 2);
	doc_free(doc);
	parse_fails("\xEF\xBB\xBF{\"k\xE9\": 2}", DOC_JSONC, 1, 4, "invalid UTF-8 (byte 0xE9)");
	parse_fails("\xEF\xBB\xBF"
	            "a: b: c\n",
	            DOC_YAML, 1, 5, "mapping values are not allowed");
}

static void test_jsonc_keeps_duplicates_and_nul(void **state)
{
	(void)state;
	struct doc *doc = parse_ok("{\"a\": \"x\\u0000y\", \"a\": 2}", DOC_JSONC);
	assert_int_equal(doc->root->u.object.len, 2);
	assert_int_equal(doc_get(doc->root, "a")->u.string.len, 3);
	doc_free(doc);
}

static void test_jsonc_big_integers(void **state)
{
	(void)state;
	struct doc *doc = parse_ok("[9223372036854775807, 9223372036854775808, 1e308]", DOC_JSONC);
	assert_true(doc->root->u.array.items[0]->u.number.is_integer);
	assert_false(doc->root->u.array.items[1]->u.number.is_integer);
	doc_free(doc);
	parse_fails("[1e999]", DOC_JSONC, 1, 2, "too large");
}

/* Whole numbers are integers however they are written, if they fit int64. */
static void test_whole_numbers(void **state)
{
	(void)state;
	static const char *const texts[] = { "[10.0, 1e1, 1E+1, -0.0, 1.5, 1e19, 1e-1, "
		                             "-9223372036854775808.0, 9223372036854775807.0]",
		                             "[10.0, 1e1, 1E+1, -0.0, 1.5, 1e19, 1e-1, "
		                             "-9223372036854775808.0, 9223372036854775807.0]\n" };
	for (int syntax = 0; syntax < 2; syntax++) {
		struct doc *doc = parse_ok(texts[syntax], syntax ? DOC_YAML : DOC_JSONC);
		struct doc_node **n = doc->root->u.array.items;
		for (int i = 0; i < 4; i++)
			assert_true(n[i]->u.number.is_integer);
		assert_int_equal(n[0]->u.number.integer, 10);
		assert_int_equal(n[1]->u.number.integer, 10);
		assert_int_equal(n[2]->u.number.integer, 10);
		assert_int_equal(n[3]->u.number.integer, 0);
		assert_false(n[4]->u.number.is_integer); /* a fraction */
		assert_false(n[5]->u.number.is_integer); /* whole, past int64 */
		assert_false(n[6]->u.number.is_integer);
		assert_true(n[7]->u.number.is_integer);
		assert_true(n[7]->u.number.integer == INT64_MIN);
		assert_false(n[8]->u.number.is_integer); /* the double is 2^63 */
		doc_free(doc);
	}
}

/* doc_describe() shows numbers in their shortest exact form and lists without a count. */
static void test_describe(void **state)
{
	(void)state;
	struct doc *doc = parse_ok("[0.1, 1.1, 10.5, 1e20, 3, 2.0, -1e-7, 0.30000000000000004, "
	                           "[1, 2], {}, \"x\"]",
	                           DOC_JSONC);
	static const char *const want[] = { "0.1",    "1.1",       "10.5",   "1e+20",
		                            "3",      "2",         "-1e-07", "0.30000000000000004",
		                            "a list", "an object", "\"x\"" };
	for (size_t i = 0; i < doc->root->u.array.len; i++) {
		struct strbuf sb = STRBUF_INIT;
		doc_describe(&sb, doc->root->u.array.items[i]);
		assert_string_equal(sb.buf, want[i]);
		strbuf_release(&sb);
	}
	doc_free(doc);
}

/* Which strings were written in quotes ("remove the quotes" is offered only for those). */
static void test_quoted_strings(void **state)
{
	(void)state;
	struct doc *doc = parse_ok("{\"a\": \"30\"}", DOC_JSONC);
	assert_true(doc_get(doc->root, "a")->u.string.quoted);
	doc_free(doc);
	doc = parse_ok("a: 30s\nb: \"30\"\nc: '30'\nd: |\n  30\ne: !!str 30\n", DOC_YAML);
	assert_false(doc_get(doc->root, "a")->u.string.quoted);
	assert_true(doc_get(doc->root, "b")->u.string.quoted);
	assert_true(doc_get(doc->root, "c")->u.string.quoted);
	assert_false(doc_get(doc->root, "d")->u.string.quoted);
	assert_false(doc_get(doc->root, "e")->u.string.quoted);
	doc_free(doc);
}

static void test_jsonc_syntax_errors(void **state)
{
	(void)state;
	parse_fails("", DOC_JSONC, 1, 1, "holds no plan");
	parse_fails("// only\n/* comments */\n", DOC_JSONC, 3, 1, "holds no plan");
	parse_fails("{\"a\": 1 \"b\": 2}", DOC_JSONC, 1, 9, "is a comma missing?");
	parse_fails("{\"a\": 1,}", DOC_JSONC, 1, 8, "trailing comma before '}'");
	parse_fails("[1, 2,\n]", DOC_JSONC, 1, 6, "trailing comma before ']'");
	parse_fails("{\"a\": \"x}", DOC_JSONC, 1, 7, "unterminated string");
	parse_fails("{\"a\": \"x\n\"}", DOC_JSONC, 1, 7, "past the end of the line");
	parse_fails("{\n  /* open\n", DOC_JSONC, 2, 3, "unterminated /* comment");
	parse_fails("{'a': 1}", DOC_JSONC, 1, 2, "double quotes, not single");
	parse_fails("{a: 1}", DOC_JSONC, 1, 2, "expected a key in double quotes, found 'a'");
	parse_fails("{\"a\": yes}", DOC_JSONC, 1, 7, "strings must be in double quotes");
	parse_fails("[01]", DOC_JSONC, 1, 2, "leading zeros");
	parse_fails("[1.]", DOC_JSONC, 1, 4, "after the decimal point");
	parse_fails("[-]", DOC_JSONC, 1, 2, "digit after '-'");
	parse_fails("[0x10]", DOC_JSONC, 1, 2, "invalid number \"0x10\"; numbers are decimal");
	parse_fails("[\"\\q\"]", DOC_JSONC, 1, 3, "invalid escape '\\q'");
	parse_fails("[\"\\ud800\"]", DOC_JSONC, 1, 3, "half of a surrogate pair");
	parse_fails("[\"\\udc00\"]", DOC_JSONC, 1, 3, "half of a surrogate pair");
	parse_fails("[\"\\u12\"]", DOC_JSONC, 1, 3, "four hexadecimal digits");
	parse_fails("[\"a\tb\"]", DOC_JSONC, 1, 4, "control character U+0009");
	parse_fails("{} {}", DOC_JSONC, 1, 4, "a file holds one plan");
	parse_fails("{\"a\" 1}", DOC_JSONC, 1, 6, "expected ':' after the key \"a\"");
	parse_fails("{\"a\": [1, 2}", DOC_JSONC, 1, 12, "expected ',' or ']' after a list item");
	parse_fails("{\"a\": 1", DOC_JSONC, 1, 1, "never closed (expected '}')");
	parse_fails("[1", DOC_JSONC, 1, 1, "never closed (expected ']')");
	parse_fails("{\"a\\u0000\": 1}", DOC_JSONC, 1, 2, "keys may not contain NUL");
	parse_fails("{\"a\": 1}\xFF", DOC_JSONC, 1, 9, "invalid UTF-8 (byte 0xFF)");
	parse_fails("{\"a\": \0}", DOC_JSONC, 1, 7,
	            "found the end of the file"); /* strlen stops at NUL */
}

static void test_nul_byte_is_reported(void **state)
{
	(void)state;
	struct diag_list dl = DIAG_LIST_INIT;
	struct doc *doc = NULL;
	assert_int_equal(doc_parse("t", "{\"a\":\n \0}", 9, DOC_JSONC, &doc, &dl), SP_ESYNTAX);
	assert_int_equal(dl.items[0].pos.line, 2);
	assert_int_equal(dl.items[0].pos.col, 2);
	assert_string_equal(dl.items[0].message, "NUL byte in the file; a plan must be text");
	diag_list_release(&dl);
	doc_free(doc);
}

static void test_depth_limit(void **state)
{
	(void)state;
	char deep[2 * PLAN_MAX_DEPTH + 8];
	size_t n = 0;
	for (int i = 0; i < PLAN_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i < PLAN_MAX_DEPTH; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	struct doc *doc = parse_ok(deep, DOC_JSONC); /* exactly the limit */
	doc_free(doc);
	memmove(deep + 1, deep, n + 1);
	deep[0] = '[';
	deep[n + 1] = ']';
	deep[n + 2] = '\0';
	parse_fails(deep, DOC_JSONC, 1, PLAN_MAX_DEPTH + 1, "nested more than 100 levels");
}

static void test_yaml_core_schema(void **state)
{
	(void)state;
	struct doc *doc = parse_ok("a: yes\n"
	                           "b: true\n"
	                           "c: 0x1F\n"
	                           "d: -12\n"
	                           "e: 1.5e3\n"
	                           "f: ~\n"
	                           "g: \"true\"\n"
	                           "h: 0o17\n"
	                           "i: .5\n"
	                           "j: 1.2.3\n"
	                           "k: !!str 42\n"
	                           "l: |\n  two\n  lines\n",
	                           DOC_YAML);
	const struct doc_node *r = doc->root;
	assert_int_equal(doc_get(r, "a")->kind, DOC_STRING);
	assert_int_equal(doc_get(r, "b")->kind, DOC_BOOL);
	assert_int_equal(doc_get(r, "c")->u.number.integer, 31);
	assert_int_equal(doc_get(r, "d")->u.number.integer, -12);
	assert_true(doc_get(r, "e")->u.number.value == 1500.0);
	assert_int_equal(doc_get(r, "e")->u.number.integer, 1500); /* whole, so an integer */
	assert_int_equal(doc_get(r, "f")->kind, DOC_NULL);
	assert_int_equal(doc_get(r, "g")->kind, DOC_STRING);
	assert_int_equal(doc_get(r, "h")->u.number.integer, 15);
	assert_true(doc_get(r, "i")->u.number.value == 0.5);
	assert_int_equal(doc_get(r, "j")->kind, DOC_STRING);
	assert_string_equal(doc_get(r, "k")->u.string.s, "42");
	assert_string_equal(doc_get(r, "l")->u.string.s, "two\nlines\n");
	assert_int_equal(doc_member(r, "c")->key_pos.line, 3);
	assert_int_equal(doc_get(r, "c")->pos.col, 4);
	doc_free(doc);
}

static void test_yaml_aliases_share_and_count(void **state)
{
	(void)state;
	struct doc *doc = parse_ok(
	    "base: &b {region: eu-west-1, n: [1, 2]}\ncopy: *b\nn: &n 5\nm: *n\n", DOC_YAML);
	/* An alias's node is a copy carrying the alias's position; its children are shared. */
	const struct doc_node *base = doc_get(doc->root, "base"),
	                      *copy = doc_get(doc->root, "copy");
	assert_int_equal(copy->kind, DOC_OBJECT);
	assert_ptr_equal(base->u.object.members, copy->u.object.members);
	assert_int_equal(copy->pos.line, 2);
	assert_int_equal(copy->pos.col, 7);
	assert_int_equal(doc_get(doc->root, "m")->u.number.integer, 5);
	assert_int_equal(doc_get(doc->root, "m")->pos.line, 4);
	assert_int_equal(doc_get(doc->root, "m")->pos.col, 4);
	/* doc_pos_in() reports what the alias repeats at the alias. */
	const struct doc_node *region = doc_get(copy, "region");
	assert_int_equal(doc_pos_in(copy, region).line, 2);
	assert_int_equal(doc_pos_in(base, doc_get(base, "region")).col, 19);
	/* Values, not keys: the root, then base (map, region, list, 2 items) = 6; the alias
	 * counts base's 5 again; n and m one each. */
	assert_int_equal(doc->nodes, 13);
	doc_free(doc);
}

/* Text of a YAML list nested levels deep around inner ("[[x]]" for 2). */
static void nest(struct strbuf *sb, int levels, const char *inner)
{
	for (int i = 0; i < levels; i++)
		strbuf_addch(sb, '[');
	strbuf_addstr(sb, inner);
	for (int i = 0; i < levels; i++)
		strbuf_addch(sb, ']');
}

/* An alias counts its value's full height against the nesting limit. */
static void test_yaml_alias_depth(void **state)
{
	(void)state;
	/* a is 99 levels deep at depth 1 (in the top-level object): the deepest list is at
	 * depth 99, the last allowed. Used at depth 1 again it fits; one level deeper, not. */
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "a: &a ");
	nest(&sb, PLAN_MAX_DEPTH - 1, "");
	strbuf_addstr(&sb, "\nb: *a\n");
	struct doc *doc = parse_ok(sb.buf, DOC_YAML);
	doc_free(doc);
	strbuf_addstr(&sb, "c: [*a]\n");
	parse_fails(sb.buf, DOC_YAML, 3, 5,
	            "values are nested more than 100 levels deep through the alias *a (its value "
	            "is 99 levels deep)");
	strbuf_release(&sb);

	/* A chain of aliases, each link 10 levels deeper than the one before: a9 would reach
	 * 101. Unchecked, such chains nested values thousands of levels deep, enough to
	 * overflow the stack of every recursive walk over the tree. */
	strbuf_addstr(&sb, "a0: &a0 ");
	nest(&sb, 10, "x");
	strbuf_addch(&sb, '\n');
	for (int i = 1; i < 30; i++) {
		char inner[16];
		snprintf(inner, sizeof(inner), "*a%d", i - 1);
		strbuf_addf(&sb, "a%d: &a%d ", i, i);
		nest(&sb, 10, inner);
		strbuf_addch(&sb, '\n');
	}
	parse_fails(sb.buf, DOC_YAML, 10, 19,
	            "through the alias *a8 (its value is 90 levels deep)");
	strbuf_release(&sb);

	/* A scalar has no height: an alias to one is fine at any depth a scalar is. */
	strbuf_addstr(&sb, "s: &s x\nl: ");
	nest(&sb, PLAN_MAX_DEPTH - 1, "*s");
	strbuf_addch(&sb, '\n');
	doc = parse_ok(sb.buf, DOC_YAML);
	doc_free(doc);
	strbuf_release(&sb);
}

static void test_yaml_errors(void **state)
{
	(void)state;
	parse_fails("", DOC_YAML, 1, 1, "holds no plan");
	parse_fails("# nothing\n", DOC_YAML, 2, 1, "holds no plan");
	parse_fails("a: 1\n---\nb: 2\n", DOC_YAML, 2, 1, "a second YAML document");
	parse_fails("a: *nope\n", DOC_YAML, 1, 4, "alias *nope refers to no anchor");
	parse_fails("a: !custom x\n", DOC_YAML, 1, 4, "unsupported YAML tag \"!custom\"");
	parse_fails("a: !!int abc\n", DOC_YAML, 1, 4, "\"abc\" is not a valid !!int");
	parse_fails("a: !!binary aGk=\n", DOC_YAML, 1, 4, "unsupported YAML tag \"!!binary\"");
	parse_fails("a: !<tag:example.com,2000:x> 1\n", DOC_YAML, 1, 4,
	            "unsupported YAML tag \"tag:example.com,2000:x\"");
	parse_fails("a:\n\t- 1\n", DOC_YAML, 2, 1, "tabs cannot indent YAML; use spaces");
	parse_fails("a: \xC3\xA9\nb:\n\t- 1\n", DOC_YAML, 3, 1, "tabs cannot indent YAML");
	parse_fails("a: b: c\n", DOC_YAML, 1, 5,
	            "YAML: mapping values are not allowed in this context");
	parse_fails("a: .inf\n", DOC_YAML, 1, 4, "not a finite number");
	parse_fails("? [1]\n: x\n", DOC_YAML, 1, 3, "keys must be plain strings");
	parse_fails("a: 1\n b: 2\n", DOC_YAML, 2, 3, "YAML: mapping values are not allowed");
	parse_fails("a: &x [*x]\n", DOC_YAML, 1, 8, "refers to no anchor");
}

static void test_syntax_guess(void **state)
{
	(void)state;
	assert_int_equal(doc_guess_syntax("p.json", "a: 1", 4), DOC_JSONC);
	assert_int_equal(doc_guess_syntax("p.jsonc", "", 0), DOC_JSONC);
	assert_int_equal(doc_guess_syntax("p.yml", "{}", 2), DOC_YAML);
	assert_int_equal(doc_guess_syntax("dir.yaml/p", "\n  {", 4), DOC_JSONC);
	assert_int_equal(doc_guess_syntax("<stdin>", "// c\n{}", 7), DOC_JSONC);
	assert_int_equal(doc_guess_syntax("<stdin>", "stages: []", 10), DOC_YAML);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jsonc_values_and_positions),
		cmocka_unit_test(test_jsonc_columns_count_characters),
		cmocka_unit_test(test_jsonc_keeps_duplicates_and_nul),
		cmocka_unit_test(test_jsonc_big_integers),
		cmocka_unit_test(test_whole_numbers),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_quoted_strings),
		cmocka_unit_test(test_jsonc_syntax_errors),
		cmocka_unit_test(test_nul_byte_is_reported),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_yaml_core_schema),
		cmocka_unit_test(test_yaml_aliases_share_and_count),
		cmocka_unit_test(test_yaml_alias_depth),
		cmocka_unit_test(test_yaml_errors),
		cmocka_unit_test(test_syntax_guess),
	};
	return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
