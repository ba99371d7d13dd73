/*
 * doc.c - plan documents: loading, syntax choice, node helpers (see doc.h).
 */
#include "plan/doc.h"

#include "plan/limits.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct doc_pos no_pos = { 0, 0 };

enum doc_syntax doc_guess_syntax(const char *name, const char *text, size_t len)
{
	const char *dot = strrchr(name, '.');
	const char *slash = strrchr(name, '/');
	if (dot && (!slash || dot > slash)) {
		if (!strcasecmp(dot, ".json") || !strcasecmp(dot, ".jsonc"))
			return DOC_JSONC;
		if (!strcasecmp(dot, ".yaml") || !strcasecmp(dot, ".yml"))
			return DOC_YAML;
	}
	size_t i = 0;
	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
		i = 3;
	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
		i++;
	if (i < len && (text[i] == '{' || text[i] == '[' || text[i] == '/'))
		return DOC_JSONC;
	return DOC_YAML;
}

int doc_check_text(const struct doc *doc, struct diag_list *diags)
{
	const unsigned char *s = (const unsigned char *)doc->text;
	struct doc_pos pos = { 1, 1 };
	size_t i = 0;
	if (doc->text_len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
		i = 3; /* byte order mark: not a character of line 1, as for the readers */
	while (i < doc->text_len) {
		if (s[i] == '\0') {
			diag_add(diags, DIAG_ERROR, doc->name, pos, NULL, NULL,
			         "NUL byte in the file; a plan must be text");
			return SP_ESYNTAX;
		}
		size_t n = utf8_seq_len(s + i, doc->text_len - i);
		if (n == 0) {
			diag_add(diags, DIAG_ERROR, doc->name, pos, NULL, NULL,
			         "invalid UTF-8 (byte 0x%02X); a plan must be UTF-8 text", s[i]);
			return SP_ESYNTAX;
		}
		if (s[i] == '\n') {
			pos.line++;
			pos.col = 1;
		} else {
			pos.col++;
		}
		i += n;
	}
	return 0;
}

int doc_parse(const char *name, const char *text, size_t len, enum doc_syntax syntax,
              struct doc **ret_doc, struct diag_list *diags)
{
	struct doc *doc = xcalloc(1, sizeof(*doc));
	doc->name = xstrdup(name);
	doc->text = xmemdup0(text, len);
	doc->text_len = len;
	doc->syntax = syntax;
	doc->arena = (struct arena)ARENA_INIT;

	int r = doc_check_text(doc, diags);
	if (r == 0)
		r = syntax == DOC_JSONC ? jsonc_parse(doc, diags) : yaml_parse(doc, diags);
	if (r < 0)
		doc->root = NULL;
	*ret_doc = doc;
	return r;
}

int doc_load(const char *path, struct doc **ret_doc, struct diag_list *diags)
{
	const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
	struct strbuf err = STRBUF_INIT;
	char *text;
	size_t len;
	int r = read_file_capped(path, PLAN_MAX_BYTES, &text, &len, &err);
	if (r < 0) {
		diag_add(diags, DIAG_ERROR, name, no_pos, NULL, NULL, "cannot read plan: %s",
		         err.buf);
		strbuf_release(&err);
		return r;
	}
	r = doc_parse(name, text, len, doc_guess_syntax(name, text, len), ret_doc, diags);
	free(text);
	return r;
}

void doc_free(struct doc *doc)
{
	if (!doc)
		return;
	arena_release(&doc->arena);
	free(doc->name);
	free(doc->text);
	free(doc);
}

struct doc_node *doc_node_new(struct doc *doc, enum doc_kind kind, struct doc_pos pos)
{
	if (doc->nodes >= PLAN_MAX_NODES)
		return NULL;
	doc->nodes++;
	struct doc_node *n = arena_alloc(&doc->arena, sizeof(*n));
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->pos = pos;
	return n;
}

bool doc_whole_int64(double v, int64_t *ret)
{
	/* -2^63 and 2^63 are exact doubles; every whole double in between fits. */
	if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) || v != floor(v))
		return false;
	*ret = (int64_t)v;
	return true;
}

struct doc_pos doc_pos_in(const struct doc_node *container, const struct doc_node *child)
{
	const struct doc_pos c = container->pos, p = child->pos;
	if (p.line < c.line || (p.line == c.line && p.col < c.col))
		return c;
	return p;
}

const struct doc_member *doc_member(const struct doc_node *obj, const char *key)
{
	if (!obj || obj->kind != DOC_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.members[i].key, key) == 0)
			return &obj->u.object.members[i];
	return NULL;
}

struct doc_node *doc_get(const struct doc_node *obj, const char *key)
{
	const struct doc_member *m = doc_member(obj, key);
	return m ? m->value : NULL;
}

const char *doc_kind_name(enum doc_kind kind)
{
	switch (kind) {
	case DOC_NULL:
		return "null";
	case DOC_BOOL:
		return "a boolean";
	case DOC_NUMBER:
		return "a number";
	case DOC_STRING:
		return "a string";
	case DOC_ARRAY:
		return "a list";
	case DOC_OBJECT:
		return "an object";
	}
	return "a value";
}

/* Appends s quoted, escaping what would not print, cut after max characters. */
static void quote_short(struct strbuf *out, const char *s, size_t len, size_t max)
{
	strbuf_addch(out, '"');
	size_t chars = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c & 0xC0) != 0x80 && chars++ == max) {
			strbuf_addstr(out, "...");
			break;
		}
		if (c == '"' || c == '\\')
			strbuf_addf(out, "\\%c", c);
		else if (c == '\n')
			strbuf_addstr(out, "\\n");
		else if (c == '\t')
			strbuf_addstr(out, "\\t");
		else if (c < 0x20 || c == 0x7F)
			strbuf_addf(out, "\\u%04x", c);
		else
			strbuf_addch(out, (char)c);
	}
	strbuf_addch(out, '"');
}

/* Appends v with the fewest significant digits (15 to 17) that read back as v:
 * 0.1, not 0.10000000000000001. */
static void describe_double(struct strbuf *out, double v)
{
	char buf[40];
	for (int digits = 15; digits <= 17; digits++) {
		snprintf(buf, sizeof(buf), "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	strbuf_addstr(out, buf);
}

void doc_describe(struct strbuf *out, const struct doc_node *node)
{
	switch (node->kind) {
	case DOC_NULL:
		strbuf_addstr(out, "null");
		break;
	case DOC_BOOL:
		strbuf_addstr(out, node->u.boolean ? "true" : "false");
		break;
	case DOC_NUMBER:
		if (node->u.number.is_integer)
			strbuf_addf(out, "%lld", (long long)node->u.number.integer);
		else
			describe_double(out, node->u.number.value);
		break;
	case DOC_STRING:
		quote_short(out, node->u.string.s, node->u.string.len, 40);
		break;
	case DOC_ARRAY:
		strbuf_addstr(out, "a list");
		break;
	case DOC_OBJECT:
		strbuf_addstr(out, "an object");
		break;
	}
}

void json_pointer_push(struct strbuf *ptr, const char *segment)
{
	strbuf_addch(ptr, '/');
	for (const char *p = segment; *p; p++) {
		if (*p == '~')
			strbuf_addstr(ptr, "~0");
		else if (*p == '/')
			strbuf_addstr(ptr, "~1");
		else
			strbuf_addch(ptr, *p);
	}
}

void json_pointer_push_index(struct strbuf *ptr, size_t index)
{
	strbuf_addf(ptr, "/%zu", index);
}
