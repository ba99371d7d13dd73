/*
 * yaml.c - reads YAML into a doc tree through libyaml's event parser.
 *
 * Plain scalars are typed by the YAML 1.2 core schema: true/false, null and
 * ~, integers (decimal, 0o octal, 0x hex) and floats become those types;
 * everything else, and every quoted or block scalar, is a string. So "yes"
 * and "on" stay strings (YAML 1.1 would make them booleans), which keeps a
 * YAML plan meaning what its JSON twin means.
 *
 * Anchors and aliases work; an alias shares the anchored subtree instead of
 * copying it (only its top node is copied, to carry the alias's position),
 * but counts its full size against PLAN_MAX_NODES, which stops "billion
 * laughs" documents, and its full height against PLAN_MAX_DEPTH, which stops
 * chains of aliases from nesting values thousands of levels deep. An alias
 * must follow its anchor's end, so the tree cannot contain cycles. One
 * document per file.
 */
#include "plan/doc.h"
#include "plan/limits.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/strmap.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct anchor {
	const char *name;
	struct doc_node *node;
	size_t size;     /* values in the subtree, aliases expanded */
	unsigned height; /* levels of lists and objects in it, aliases expanded; 0 for a scalar */
};

struct yp {
	struct doc *doc;
	struct diag_list *diags;
	yaml_parser_t parser;
	struct strmap anchors; /* name -> struct anchor (in the arena) */
	bool failed;
};

static struct doc_pos mark_pos(yaml_mark_t m)
{
	struct doc_pos p = { (uint32_t)m.line + 1, (uint32_t)m.column + 1 };
	return p;
}

static void yp_error(struct yp *yp, struct doc_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void yp_error(struct yp *yp, struct doc_pos pos, const char *fmt, ...)
{
	if (yp->failed)
		return;
	yp->failed = true;
	struct strbuf msg = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	diag_add(yp->diags, DIAG_ERROR, yp->doc->name, pos, NULL, NULL, "%s", msg.buf);
	strbuf_release(&msg);
}

/* The first byte of character number index (0-based, after any byte order
 * mark: libyaml's yaml_mark_t.index), or -1 past the end. */
static int char_at(const struct doc *doc, size_t index)
{
	const unsigned char *s = (const unsigned char *)doc->text;
	size_t i = doc->text_len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3) ? 3 : 0;
	for (; i < doc->text_len; i++) {
		if ((s[i] & 0xC0) == 0x80)
			continue;
		if (index-- == 0)
			return s[i];
	}
	return -1;
}

/* Fetches the next event; on a libyaml error reports it and returns -1. */
static int next_event(struct yp *yp, yaml_event_t *ev)
{
	if (yaml_parser_parse(&yp->parser, ev))
		return 0;
	yaml_parser_t *p = &yp->parser;
	const char *problem = p->problem ? p->problem : "malformed YAML";
	if (p->error == YAML_MEMORY_ERROR)
		problem = "out of memory while parsing YAML";
	/* libyaml's words for a tab where indentation is expected. */
	if (p->problem && !strcmp(p->problem, "found character that cannot start any token") &&
	    char_at(yp->doc, p->problem_mark.index) == '\t')
		yp_error(yp, mark_pos(p->problem_mark), "tabs cannot indent YAML; use spaces");
	else if (p->context)
		yp_error(yp, mark_pos(p->problem_mark), "YAML: %s %s", problem, p->context);
	else
		yp_error(yp, mark_pos(p->problem_mark), "YAML: %s", problem);
	return -1;
}

static struct doc_node *new_node(struct yp *yp, enum doc_kind kind, struct doc_pos pos)
{
	struct doc_node *n = doc_node_new(yp->doc, kind, pos);
	if (!n)
		yp_error(yp, pos, "the plan has more than %zu values", PLAN_MAX_NODES);
	return n;
}

static size_t span(const char *s, const char *set)
{
	return strspn(s, set);
}

#define DEC "0123456789"

static bool is_core_int(const char *s)
{
	if (!strncmp(s, "0o", 2))
		return s[2] && s[2 + span(s + 2, "01234567")] == '\0';
	if (!strncmp(s, "0x", 2))
		return s[2] && s[2 + span(s + 2, DEC "abcdefABCDEF")] == '\0';
	if (*s == '-' || *s == '+')
		s++;
	return *s && s[span(s, DEC)] == '\0';
}

static bool is_core_float(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!strcmp(s, ".inf") || !strcmp(s, ".Inf") || !strcmp(s, ".INF"))
		return true;
	size_t whole = span(s, DEC);
	s += whole;
	if (*s == '.') {
		s++;
		size_t frac = span(s, DEC);
		if (!whole && !frac)
			return false;
		s += frac;
	} else if (!whole) {
		return false;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		size_t exp = span(s, DEC);
		if (!exp)
			return false;
		s += exp;
	}
	return *s == '\0';
}

/* Appends tag as it is written in a plan: "!!int" for tag:yaml.org,2002:int. */
static void tag_shorthand(struct strbuf *out, const char *tag)
{
	static const char yaml_prefix[] = "tag:yaml.org,2002:";
	if (!strncmp(tag, yaml_prefix, sizeof(yaml_prefix) - 1))
		strbuf_addf(out, "!!%.60s", tag + sizeof(yaml_prefix) - 1);
	else
		strbuf_addf(out, "%.60s", tag);
}

static bool is_core_nan(const char *s)
{
	return !strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN");
}

enum scalar_type { SC_NULL, SC_BOOL, SC_INT, SC_FLOAT, SC_STRING };

/* Types a plain scalar by the YAML 1.2 core schema. */
static enum scalar_type core_schema_type(const char *s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const bools[] = {
		"true", "True", "TRUE", "false", "False", "FALSE", NULL
	};
	for (const char *const *w = nulls; *w; w++)
		if (!strcmp(s, *w))
			return SC_NULL;
	for (const char *const *w = bools; *w; w++)
		if (!strcmp(s, *w))
			return SC_BOOL;
	/* Cheap filter first: numbers start with a sign, a digit or a dot. */
	if (!strchr("+-.0123456789", s[0]))
		return SC_STRING;
	if (is_core_int(s))
		return SC_INT;
	if (is_core_float(s) || is_core_nan(s))
		return SC_FLOAT;
	return SC_STRING;
}

/*
 * The type an explicit tag gives a scalar: !!str, !!int, !!float, !!bool or
 * !!null, whose text must then be one of that type (an integer is a float
 * too). Returns 0 and *ret, or -1 after reporting the tag or the text.
 */
static int tagged_type(struct yp *yp, const char *tag, const char *text, struct doc_pos pos,
                       enum scalar_type *ret)
{
	static const struct {
		const char *tag;
		enum scalar_type type;
	} tags[] = { { YAML_STR_TAG, SC_STRING },
		     { YAML_INT_TAG, SC_INT },
		     { YAML_FLOAT_TAG, SC_FLOAT },
		     { YAML_BOOL_TAG, SC_BOOL },
		     { YAML_NULL_TAG, SC_NULL } };
	size_t k;
	for (k = 0; k < sizeof(tags) / sizeof(tags[0]); k++)
		if (!strcmp(tag, tags[k].tag))
			break;
	struct strbuf shown = STRBUF_INIT;
	tag_shorthand(&shown, tag);
	int r = 0;
	if (k == sizeof(tags) / sizeof(tags[0])) {
		yp_error(yp, pos, "unsupported YAML tag \"%s\"", shown.buf);
		r = -1;
	} else if (tags[k].type != SC_STRING && core_schema_type(text) != tags[k].type &&
	           !(tags[k].type == SC_FLOAT && core_schema_type(text) == SC_INT)) {
		yp_error(yp, pos, "\"%.40s\" is not a valid %s", text, shown.buf);
		r = -1;
	} else {
		*ret = tags[k].type;
	}
	strbuf_release(&shown);
	return r;
}

/* The number node of text (type SC_INT or SC_FLOAT): octal and hex
 * integers, integers exact past 2^53, whole floats as integers too; NULL
 * (reported) for infinities and NaN. */
static struct doc_node *number_node(struct yp *yp, const char *text, enum scalar_type type,
                                    struct doc_pos pos)
{
	double v;
	bool is_int = false;
	long long iv = 0;
	if (!strncmp(text, "0o", 2) || !strncmp(text, "0x", 2)) {
		errno = 0;
		unsigned long long u = strtoull(text + 2, NULL, text[1] == 'o' ? 8 : 16);
		if (errno == 0 && u <= INT64_MAX) {
			iv = (long long)u;
			is_int = true;
		}
		v = (double)u;
	} else if (strstr(text, "inf") || strstr(text, "Inf") || strstr(text, "INF") ||
	           strstr(text, "nan") || strstr(text, "NaN") || strstr(text, "NAN")) {
		v = NAN;
	} else {
		v = strtod(text, NULL);
		if (type == SC_INT) {
			/* Exact, even past 2^53, where the double is not. */
			errno = 0;
			iv = strtoll(text, NULL, 10);
			is_int = errno == 0;
		} else {
			/* 10.0 and 1e1 are whole numbers too. */
			int64_t whole;
			is_int = doc_whole_int64(v, &whole);
			iv = is_int ? (long long)whole : 0;
		}
	}
	if (!isfinite(v)) {
		yp_error(yp, pos, "%.40s is not a finite number; plans allow only finite numbers",
		         text);
		return NULL;
	}
	struct doc_node *node = new_node(yp, DOC_NUMBER, pos);
	if (node) {
		node->u.number.value = v;
		node->u.number.integer = iv;
		node->u.number.is_integer = is_int;
	}
	return node;
}

static struct doc_node *scalar_node(struct yp *yp, yaml_event_t *ev)
{
	const char *text = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	struct doc_pos pos = mark_pos(ev->start_mark);
	enum scalar_type type = SC_STRING;
	if (tag && strcmp(tag, "!") != 0) {
		if (tagged_type(yp, tag, text, pos, &type) < 0)
			return NULL;
	} else if (!tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		type = core_schema_type(text);
	}

	struct doc_node *node;
	switch (type) {
	case SC_NULL:
		return new_node(yp, DOC_NULL, pos);
	case SC_BOOL:
		node = new_node(yp, DOC_BOOL, pos);
		if (node)
			node->u.boolean = text[0] == 't' || text[0] == 'T';
		return node;
	case SC_INT:
	case SC_FLOAT:
		return number_node(yp, text, type, pos);
	case SC_STRING:
		break;
	}
	node = new_node(yp, DOC_STRING, pos);
	if (node) {
		node->u.string.s = arena_memdup0(&yp->doc->arena, text, len);
		node->u.string.len = len;
		node->u.string.quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
		                        ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	}
	return node;
}

static void add_anchor(struct yp *yp, const unsigned char *name, struct doc_node *node, size_t size,
                       unsigned height)
{
	if (!name || !node)
		return;
	struct anchor *a = arena_alloc(&yp->doc->arena, sizeof(*a));
	*a = (struct anchor){ arena_strdup(&yp->doc->arena, (const char *)name), node, size,
		              height };
	/* A later anchor of the same name replaces the earlier one, as YAML says. */
	strmap_put(&yp->anchors, a->name, strlen(a->name), a);
}

/*
 * The value of an alias used at depth: a copy of the anchored node with the
 * alias's position (so problems found at it point here, not at the anchor);
 * the children stay shared. Sets *height to the anchored value's.
 */
static struct doc_node *alias_node(struct yp *yp, yaml_event_t *ev, unsigned depth,
                                   unsigned *height)
{
	const char *name = (const char *)ev->data.alias.anchor;
	struct doc_pos pos = mark_pos(ev->start_mark);
	const struct anchor *a = strmap_get(&yp->anchors, name, strlen(name));
	if (!a) {
		yp_error(yp, pos, "alias *%.60s refers to no anchor defined before it", name);
		return NULL;
	}
	/* A list or object at depth d is allowed while d < PLAN_MAX_DEPTH, as in
	 * build_node: the anchored value's deepest one lands at depth + height - 1. */
	if (a->height > PLAN_MAX_DEPTH - depth) {
		yp_error(yp, pos,
		         "values are nested more than %d levels deep through the alias *%.60s "
		         "(its value is %u levels deep)",
		         PLAN_MAX_DEPTH, name, a->height);
		return NULL;
	}
	if (a->size > PLAN_MAX_NODES - yp->doc->nodes) {
		yp_error(yp, pos, "aliases expand the plan to more than %zu values",
		         PLAN_MAX_NODES);
		return NULL;
	}
	yp->doc->nodes += a->size; /* the copy below included */
	struct doc_node *copy = arena_alloc(&yp->doc->arena, sizeof(*copy));
	*copy = *a->node;
	copy->pos = pos;
	*height = a->height;
	return copy;
}

static struct doc_node *build_node(struct yp *yp, yaml_event_t *ev, unsigned depth,
                                   unsigned *height);

/* Builds a list; sets *height to its items' greatest height (build_node adds its own level). */
static struct doc_node *build_sequence(struct yp *yp, yaml_event_t *start, unsigned depth,
                                       unsigned *height)
{
	struct doc_node *node = new_node(yp, DOC_ARRAY, mark_pos(start->start_mark));
	if (!node)
		return NULL;
	struct doc_node **items = NULL;
	size_t len = 0, alloc = 0;
	for (;;) {
		yaml_event_t ev;
		if (next_event(yp, &ev) < 0)
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		unsigned h = 0;
		struct doc_node *item = build_node(yp, &ev, depth + 1, &h);
		yaml_event_delete(&ev);
		if (!item)
			goto fail;
		if (h > *height)
			*height = h;
		if (len == alloc) {
			alloc = alloc ? alloc * 2 : 8;
			items = xreallocarray(items, alloc, sizeof(*items));
		}
		items[len++] = item;
	}
	node->u.array.items = arena_alloc_array(&yp->doc->arena, len, sizeof(*items));
	if (len)
		memcpy(node->u.array.items, items, len * sizeof(*items));
	node->u.array.len = len;
	free(items);
	return node;
fail:
	free(items);
	return NULL;
}

/* Builds an object; sets *height as build_sequence does. */
static struct doc_node *build_mapping(struct yp *yp, yaml_event_t *start, unsigned depth,
                                      unsigned *height)
{
	struct doc_node *node = new_node(yp, DOC_OBJECT, mark_pos(start->start_mark));
	if (!node)
		return NULL;
	struct doc_member *members = NULL;
	size_t len = 0, alloc = 0;
	for (;;) {
		yaml_event_t ev;
		if (next_event(yp, &ev) < 0)
			goto fail;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		struct doc_member m = { .key_pos = mark_pos(ev.start_mark) };
		if (ev.type != YAML_SCALAR_EVENT) {
			yp_error(yp, m.key_pos, "keys must be plain strings, not %s",
			         ev.type == YAML_ALIAS_EVENT ? "aliases" : "lists or objects");
			yaml_event_delete(&ev);
			goto fail;
		}
		if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length)) {
			yp_error(yp, m.key_pos, "keys may not contain NUL characters");
			yaml_event_delete(&ev);
			goto fail;
		}
		m.key = arena_memdup0(&yp->doc->arena, ev.data.scalar.value, ev.data.scalar.length);
		m.key_len = ev.data.scalar.length;
		yaml_event_delete(&ev);
		if (next_event(yp, &ev) < 0)
			goto fail;
		unsigned h = 0;
		m.value = build_node(yp, &ev, depth + 1, &h);
		yaml_event_delete(&ev);
		if (!m.value)
			goto fail;
		if (h > *height)
			*height = h;
		if (len == alloc) {
			alloc = alloc ? alloc * 2 : 8;
			members = xreallocarray(members, alloc, sizeof(*members));
		}
		members[len++] = m;
	}
	node->u.object.members = arena_alloc_array(&yp->doc->arena, len, sizeof(*members));
	if (len)
		memcpy(node->u.object.members, members, len * sizeof(*members));
	node->u.object.len = len;
	free(members);
	return node;
fail:
	free(members);
	return NULL;
}

/*
 * Builds the value that starts with event ev (owned by the caller) at depth
 * (0 for the top level). Sets *height to the levels of lists and objects in
 * it, aliases expanded: 0 for a scalar, 1 for [] or [1], 2 for [[1]].
 */
static struct doc_node *build_node(struct yp *yp, yaml_event_t *ev, unsigned depth,
                                   unsigned *height)
{
	size_t before = yp->doc->nodes;
	struct doc_node *node;
	const unsigned char *anchor = NULL;
	*height = 0;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		node = scalar_node(yp, ev);
		anchor = ev->data.scalar.anchor;
		break;
	case YAML_ALIAS_EVENT:
		return alias_node(yp, ev, depth, height);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (depth >= PLAN_MAX_DEPTH) {
			yp_error(yp, mark_pos(ev->start_mark),
			         "values are nested more than %d levels deep", PLAN_MAX_DEPTH);
			return NULL;
		}
		if (ev->type == YAML_SEQUENCE_START_EVENT) {
			node = build_sequence(yp, ev, depth, height);
			anchor = ev->data.sequence_start.anchor;
		} else {
			node = build_mapping(yp, ev, depth, height);
			anchor = ev->data.mapping_start.anchor;
		}
		++*height;
		break;
	default:
		yp_error(yp, mark_pos(ev->start_mark), "YAML: unexpected event");
		return NULL;
	}
	add_anchor(yp, anchor, node, yp->doc->nodes - before, *height);
	return node;
}

static int read_stream(struct yp *yp)
{
	yaml_event_t ev;
	if (next_event(yp, &ev) < 0)
		return -1;
	yaml_event_delete(&ev); /* STREAM-START */
	if (next_event(yp, &ev) < 0)
		return -1;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yp_error(yp, mark_pos(ev.start_mark),
		         "the file holds no plan (it is empty or only comments)");
		yaml_event_delete(&ev);
		return -1;
	}
	yaml_event_delete(&ev); /* DOCUMENT-START */
	if (next_event(yp, &ev) < 0)
		return -1;
	unsigned height;
	yp->doc->root = build_node(yp, &ev, 0, &height);
	yaml_event_delete(&ev);
	if (!yp->doc->root)
		return -1;
	if (next_event(yp, &ev) < 0)
		return -1;
	yaml_event_delete(&ev); /* DOCUMENT-END */
	if (next_event(yp, &ev) < 0)
		return -1;
	int r = 0;
	if (ev.type == YAML_DOCUMENT_START_EVENT) {
		yp_error(yp, mark_pos(ev.start_mark),
		         "a second YAML document starts here; a plan file holds one");
		r = -1;
	}
	yaml_event_delete(&ev);
	return r;
}

int yaml_parse(struct doc *doc, struct diag_list *diags)
{
	struct yp yp = { .doc = doc, .diags = diags };
	if (!yaml_parser_initialize(&yp.parser)) {
		diag_add(diags, DIAG_ERROR, doc->name, (struct doc_pos){ 0, 0 }, NULL, NULL,
		         "out of memory starting the YAML parser");
		return SP_ENOMEM;
	}
	yaml_parser_set_input_string(&yp.parser, (const unsigned char *)doc->text, doc->text_len);
	int r = read_stream(&yp);
	yaml_parser_delete(&yp.parser);
	strmap_release(&yp.anchors);
	if (r < 0 || yp.failed) {
		doc->root = NULL;
		return SP_ESYNTAX;
	}
	return 0;
}
