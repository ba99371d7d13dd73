/*
 * jsonc.c - reads JSON with comments into a doc tree.
 *
 * Strict RFC 8259 JSON plus // line comments and / * block * / comments
 * (jansson and other JSON libraries have no comments and no positions; see
 * doc.h). No trailing commas, no single quotes, no bare words: each is
 * named in its error. Recursive descent, depth capped at PLAN_MAX_DEPTH,
 * one pass over the bytes keeping line and column as it goes. The first
 * syntax error ends parsing: later errors would only echo it.
 */
#include "plan/doc.h"
#include "plan/limits.h"
#include "util/alloc.h"
#include "util/error.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jp {
	struct doc *doc;
	struct diag_list *diags;
	const char *s; /* the text; s[len] is NUL */
	size_t len;
	size_t i;           /* next byte to read */
	struct doc_pos pos; /* position of s[i] */
	bool failed;        /* a diagnostic was added; unwind */
};

static void jp_error(struct jp *jp, struct doc_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void jp_error(struct jp *jp, struct doc_pos pos, const char *fmt, ...)
{
	if (jp->failed)
		return;
	jp->failed = true;
	struct strbuf msg = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	diag_add(jp->diags, DIAG_ERROR, jp->doc->name, pos, NULL, NULL, "%s", msg.buf);
	strbuf_release(&msg);
}

static int peek(const struct jp *jp)
{
	return jp->i < jp->len ? (unsigned char)jp->s[jp->i] : -1;
}

/* Consumes one byte, keeping the position in characters. */
static void advance(struct jp *jp)
{
	unsigned char c = (unsigned char)jp->s[jp->i++];
	if (c == '\n') {
		jp->pos.line++;
		jp->pos.col = 1;
	} else if ((c & 0xC0) != 0x80) {
		/* Counts lead bytes only, so a multi-byte character is one column. Lead
		 * byte and continuation bytes are consumed together below. */
		jp->pos.col++;
	}
}

static void skip_blank(struct jp *jp)
{
	while (!jp->failed && jp->i < jp->len) {
		char c = jp->s[jp->i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			advance(jp);
		} else if (c == '/' && jp->i + 1 < jp->len && jp->s[jp->i + 1] == '/') {
			while (jp->i < jp->len && jp->s[jp->i] != '\n')
				advance(jp);
		} else if (c == '/' && jp->i + 1 < jp->len && jp->s[jp->i + 1] == '*') {
			struct doc_pos start = jp->pos;
			advance(jp);
			advance(jp);
			for (;;) {
				if (jp->i >= jp->len) {
					jp_error(jp, start, "unterminated /* comment");
					return;
				}
				if (jp->s[jp->i] == '*' && jp->i + 1 < jp->len &&
				    jp->s[jp->i + 1] == '/') {
					advance(jp);
					advance(jp);
					break;
				}
				advance(jp);
			}
		} else {
			break;
		}
	}
}

static bool is_word_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '$' || c == '.';
}

/* Appends a description of what stands at the current position. */
static void describe_here(const struct jp *jp, struct strbuf *out)
{
	int c = peek(jp);
	if (c < 0) {
		strbuf_addstr(out, "the end of the file");
	} else if (c == '"') {
		strbuf_addstr(out, "a string");
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		strbuf_addstr(out, "a number");
	} else if (is_word_char(c)) {
		size_t n = 0;
		while (jp->i + n < jp->len && n < 32 &&
		       is_word_char((unsigned char)jp->s[jp->i + n]))
			n++;
		strbuf_addf(out, "'%.*s'", (int)n, jp->s + jp->i);
	} else if (c >= 0x20 && c < 0x7F) {
		strbuf_addf(out, "'%c'", c);
	} else {
		strbuf_addf(out, "byte 0x%02X", (unsigned)c);
	}
}

static void expected_error(struct jp *jp, const char *expected, const char *hint)
{
	struct strbuf found = STRBUF_INIT;
	describe_here(jp, &found);
	jp_error(jp, jp->pos, "expected %s, found %s%s", expected, found.buf, hint ? hint : "");
	strbuf_release(&found);
}

static struct doc_node *new_node(struct jp *jp, enum doc_kind kind, struct doc_pos pos)
{
	struct doc_node *n = doc_node_new(jp->doc, kind, pos);
	if (!n)
		jp_error(jp, pos, "the plan has more than %zu values", PLAN_MAX_NODES);
	return n;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		char c = p[k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void put_utf8(struct strbuf *sb, unsigned cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | (cp >> 6)), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | (cp >> 12)), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
	} else {
		b[0] = (char)(0xF0 | (cp >> 18)), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
	}
	strbuf_add(sb, b, n);
}

/* Reads a string at '"'; sets *ret and *ret_len (arena copy). Returns 0 or -1. */
static int parse_string(struct jp *jp, const char **ret, size_t *ret_len)
{
	struct doc_pos start = jp->pos;
	struct strbuf sb = STRBUF_INIT;
	advance(jp); /* opening quote */
	for (;;) {
		if (jp->i >= jp->len) {
			jp_error(jp, start, "unterminated string (the closing '\"' is missing)");
			goto fail;
		}
		unsigned char c = (unsigned char)jp->s[jp->i];
		if (c == '"') {
			advance(jp);
			break;
		}
		if (c == '\n' || c == '\r') {
			jp_error(jp, start,
			         "string runs past the end of the line (missing closing '\"'?)");
			goto fail;
		}
		if (c < 0x20) {
			jp_error(jp, jp->pos,
			         "control character U+%04X in a string; write it as an escape such "
			         "as \\t or \\u%04X",
			         c, c);
			goto fail;
		}
		if (c != '\\') {
			/* Copy a run of plain bytes at once. */
			size_t run = 1;
			while (jp->i + run < jp->len) {
				unsigned char d = (unsigned char)jp->s[jp->i + run];
				if (d == '"' || d == '\\' || d < 0x20)
					break;
				run++;
			}
			strbuf_add(&sb, jp->s + jp->i, run);
			for (size_t k = 0; k < run; k++)
				advance(jp);
			continue;
		}
		struct doc_pos esc = jp->pos;
		advance(jp);
		int e = peek(jp);
		static const char plain_from[] = "\"\\/bfnrt";
		static const char plain_to[] = "\"\\/\b\f\n\r\t";
		const char *hit = e > 0 ? strchr(plain_from, e) : NULL;
		if (hit) {
			strbuf_addch(&sb, plain_to[hit - plain_from]);
			advance(jp);
			continue;
		}
		if (e != 'u') {
			if (e < 0)
				jp_error(jp, start,
				         "unterminated string (the closing '\"' is missing)");
			else
				jp_error(
				    jp, esc,
				    "invalid escape '\\%c' in a string; a backslash is written "
				    "\\\\",
				    e >= 0x20 && e < 0x7F ? e : '?');
			goto fail;
		}
		unsigned cp;
		if (jp->i + 5 > jp->len || hex4(jp->s + jp->i + 1, &cp) < 0) {
			jp_error(jp, esc, "\\u must be followed by four hexadecimal digits");
			goto fail;
		}
		for (int k = 0; k < 5; k++)
			advance(jp);
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			unsigned lo;
			if (jp->i + 6 <= jp->len && jp->s[jp->i] == '\\' &&
			    jp->s[jp->i + 1] == 'u' && hex4(jp->s + jp->i + 2, &lo) == 0 &&
			    lo >= 0xDC00 && lo <= 0xDFFF) {
				for (int k = 0; k < 6; k++)
					advance(jp);
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else {
				jp_error(jp, esc,
				         "\\u%04X is half of a surrogate pair; the other half is "
				         "missing",
				         cp);
				goto fail;
			}
		} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
			jp_error(jp, esc,
			         "\\u%04X is half of a surrogate pair; the other half is missing",
			         cp);
			goto fail;
		}
		put_utf8(&sb, cp);
	}
	*ret = arena_memdup0(&jp->doc->arena, sb.buf, sb.len);
	*ret_len = sb.len;
	strbuf_release(&sb);
	return 0;
fail:
	strbuf_release(&sb);
	return -1;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static struct doc_node *parse_number(struct jp *jp)
{
	struct doc_pos start = jp->pos;
	size_t begin = jp->i;
	bool integral = true;
	if (peek(jp) == '-')
		advance(jp);
	if (peek(jp) == '0') {
		advance(jp);
		if (is_digit(peek(jp))) {
			jp_error(jp, start, "numbers may not have leading zeros");
			return NULL;
		}
	} else if (is_digit(peek(jp))) {
		while (is_digit(peek(jp)))
			advance(jp);
	} else {
		jp_error(jp, start, "expected a digit after '-'");
		return NULL;
	}
	if (peek(jp) == '.') {
		integral = false;
		advance(jp);
		if (!is_digit(peek(jp))) {
			jp_error(jp, jp->pos, "expected a digit after the decimal point");
			return NULL;
		}
		while (is_digit(peek(jp)))
			advance(jp);
	}
	if (peek(jp) == 'e' || peek(jp) == 'E') {
		integral = false;
		advance(jp);
		if (peek(jp) == '+' || peek(jp) == '-')
			advance(jp);
		if (!is_digit(peek(jp))) {
			jp_error(jp, jp->pos, "expected a digit in the exponent");
			return NULL;
		}
		while (is_digit(peek(jp)))
			advance(jp);
	}
	if (is_word_char(peek(jp))) {
		size_t end = jp->i;
		while (end < jp->len && end - begin < 40 && is_word_char((unsigned char)jp->s[end]))
			end++;
		jp_error(jp, start, "invalid number \"%.*s\"; numbers are decimal, like 12 or 1.5",
		         (int)(end - begin), jp->s + begin);
		return NULL;
	}
	size_t n = jp->i - begin;
	char buf[64];
	char *text = n < sizeof(buf) ? buf : xmalloc(n + 1);
	memcpy(text, jp->s + begin, n);
	text[n] = '\0';

	struct doc_node *node = new_node(jp, DOC_NUMBER, start);
	if (node) {
		node->u.number.value = strtod(text, NULL);
		if (!isfinite(node->u.number.value)) {
			jp_error(jp, start, "number %s is too large", n > 40 ? "here" : text);
			node = NULL;
		} else if (integral) {
			/* Exact, even past 2^53, where the double is not. */
			errno = 0;
			long long v = strtoll(text, NULL, 10);
			if (errno == 0) {
				node->u.number.integer = v;
				node->u.number.is_integer = true;
			}
		} else {
			/* 10.0 and 1e1 are whole numbers too. */
			node->u.number.is_integer =
			    doc_whole_int64(node->u.number.value, &node->u.number.integer);
		}
	}
	if (text != buf)
		free(text);
	return node;
}

static struct doc_node *parse_value(struct jp *jp, unsigned depth);

static struct doc_node *parse_array(struct jp *jp, unsigned depth)
{
	struct doc_pos start = jp->pos;
	struct doc_node *node = new_node(jp, DOC_ARRAY, start);
	if (!node)
		return NULL;
	advance(jp);
	struct doc_node **items = NULL;
	size_t len = 0, alloc = 0;
	skip_blank(jp);
	if (peek(jp) == ']') {
		advance(jp);
		goto done;
	}
	for (;;) {
		struct doc_node *item = parse_value(jp, depth + 1);
		if (!item)
			goto fail;
		if (len == alloc) {
			alloc = alloc ? alloc * 2 : 8;
			items = xreallocarray(items, alloc, sizeof(*items));
		}
		items[len++] = item;
		skip_blank(jp);
		if (jp->failed)
			goto fail;
		int c = peek(jp);
		if (c == ']') {
			advance(jp);
			break;
		}
		if (c != ',') {
			if (c < 0)
				jp_error(jp, start,
				         "the list opened here is never closed (expected ']')");
			else
				expected_error(jp, "',' or ']' after a list item",
				               c == '"' || c == '{' ? " (is a comma missing?)"
				                                    : NULL);
			goto fail;
		}
		struct doc_pos comma = jp->pos;
		advance(jp);
		skip_blank(jp);
		if (peek(jp) == ']') {
			jp_error(jp, comma, "trailing comma before ']'; remove it");
			goto fail;
		}
	}
done:
	node->u.array.items = arena_alloc_array(&jp->doc->arena, len, sizeof(*items));
	if (len)
		memcpy(node->u.array.items, items, len * sizeof(*items));
	node->u.array.len = len;
	free(items);
	return node;
fail:
	free(items);
	return NULL;
}

static struct doc_node *parse_object(struct jp *jp, unsigned depth)
{
	struct doc_pos start = jp->pos;
	struct doc_node *node = new_node(jp, DOC_OBJECT, start);
	if (!node)
		return NULL;
	advance(jp);
	struct doc_member *members = NULL;
	size_t len = 0, alloc = 0;
	skip_blank(jp);
	if (peek(jp) == '}') {
		advance(jp);
		goto done;
	}
	for (;;) {
		skip_blank(jp);
		if (jp->failed)
			goto fail;
		int c = peek(jp);
		if (c != '"') {
			if (c < 0)
				jp_error(jp, start,
				         "the object opened here is never closed (expected '}')");
			else if (c == '\'')
				jp_error(jp, jp->pos, "keys must be in double quotes, not single");
			else if (is_word_char(c))
				expected_error(jp, "a key in double quotes", NULL);
			else
				expected_error(jp, "a key in double quotes", NULL);
			goto fail;
		}
		struct doc_member m = { .key_pos = jp->pos };
		if (parse_string(jp, &m.key, &m.key_len) < 0)
			goto fail;
		if (memchr(m.key, '\0', m.key_len)) {
			jp_error(jp, m.key_pos, "keys may not contain NUL characters");
			goto fail;
		}
		skip_blank(jp);
		if (peek(jp) != ':') {
			struct strbuf what = STRBUF_INIT;
			strbuf_addf(&what, "':' after the key \"%.40s\"", m.key);
			expected_error(jp, what.buf, NULL);
			strbuf_release(&what);
			goto fail;
		}
		advance(jp);
		m.value = parse_value(jp, depth + 1);
		if (!m.value)
			goto fail;
		if (len == alloc) {
			alloc = alloc ? alloc * 2 : 8;
			members = xreallocarray(members, alloc, sizeof(*members));
		}
		members[len++] = m;
		skip_blank(jp);
		if (jp->failed)
			goto fail;
		c = peek(jp);
		if (c == '}') {
			advance(jp);
			break;
		}
		if (c != ',') {
			if (c < 0) {
				jp_error(jp, start,
				         "the object opened here is never closed (expected '}')");
			} else {
				struct strbuf what = STRBUF_INIT;
				strbuf_addf(&what, "',' or '}' after the value of \"%.40s\"",
				            m.key);
				expected_error(jp, what.buf,
				               c == '"' ? " (is a comma missing?)" : NULL);
				strbuf_release(&what);
			}
			goto fail;
		}
		struct doc_pos comma = jp->pos;
		advance(jp);
		skip_blank(jp);
		if (peek(jp) == '}') {
			jp_error(jp, comma, "trailing comma before '}'; remove it");
			goto fail;
		}
	}
done:
	node->u.object.members = arena_alloc_array(&jp->doc->arena, len, sizeof(*members));
	if (len)
		memcpy(node->u.object.members, members, len * sizeof(*members));
	node->u.object.len = len;
	free(members);
	return node;
fail:
	free(members);
	return NULL;
}

static struct doc_node *parse_literal(struct jp *jp)
{
	static const struct {
		const char *word;
		enum doc_kind kind;
		bool value;
	} literals[] = { { "true", DOC_BOOL, true },
		         { "false", DOC_BOOL, false },
		         { "null", DOC_NULL, false } };
	for (size_t k = 0; k < sizeof(literals) / sizeof(literals[0]); k++) {
		size_t n = strlen(literals[k].word);
		if (jp->len - jp->i >= n && !memcmp(jp->s + jp->i, literals[k].word, n) &&
		    !is_word_char(jp->i + n < jp->len ? (unsigned char)jp->s[jp->i + n] : 0)) {
			struct doc_node *node = new_node(jp, literals[k].kind, jp->pos);
			if (node)
				node->u.boolean = literals[k].value;
			for (size_t a = 0; a < n; a++)
				advance(jp);
			return node;
		}
	}
	expected_error(jp, "a value", "; strings must be in double quotes");
	return NULL;
}

static struct doc_node *parse_value(struct jp *jp, unsigned depth)
{
	skip_blank(jp);
	if (jp->failed)
		return NULL;
	int c = peek(jp);
	if ((c == '{' || c == '[') && depth >= PLAN_MAX_DEPTH) {
		jp_error(jp, jp->pos, "values are nested more than %d levels deep", PLAN_MAX_DEPTH);
		return NULL;
	}
	switch (c) {
	case '{':
		return parse_object(jp, depth);
	case '[':
		return parse_array(jp, depth);
	case '"': {
		struct doc_pos start = jp->pos;
		const char *s;
		size_t len;
		if (parse_string(jp, &s, &len) < 0)
			return NULL;
		struct doc_node *node = new_node(jp, DOC_STRING, start);
		if (node) {
			node->u.string.s = s;
			node->u.string.len = len;
			node->u.string.quoted = true;
		}
		return node;
	}
	case '\'':
		jp_error(jp, jp->pos, "strings must be in double quotes, not single");
		return NULL;
	default:
		break;
	}
	if (c == '-' || is_digit(c))
		return parse_number(jp);
	if (is_word_char(c))
		return parse_literal(jp);
	expected_error(jp, "a value", NULL);
	return NULL;
}

int jsonc_parse(struct doc *doc, struct diag_list *diags)
{
	struct jp jp = {
		.doc = doc, .diags = diags, .s = doc->text, .len = doc->text_len, .pos = { 1, 1 }
	};
	if (jp.len >= 3 && !memcmp(jp.s, "\xEF\xBB\xBF", 3))
		jp.i = 3; /* byte order mark: not a character of line 1 */
	skip_blank(&jp);
	if (jp.failed)
		return SP_ESYNTAX;
	if (jp.i >= jp.len) {
		jp_error(&jp, jp.pos, "the file holds no plan (it is empty or only comments)");
		return SP_ESYNTAX;
	}
	struct doc_node *root = parse_value(&jp, 0);
	if (root) {
		skip_blank(&jp);
		if (!jp.failed && jp.i < jp.len)
			expected_error(&jp, "the end of the file after the plan",
			               " (a file holds one plan)");
	}
	if (jp.failed)
		return SP_ESYNTAX;
	doc->root = root;
	return 0;
}
