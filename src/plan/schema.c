/*
 * schema.c - applies field tables to plan objects (see schema.h).
 */
#include "plan/schema.h"

#include "plan/limits.h"
#include "util/strmap.h"
#include "util/suggest.h"
#include "util/timefmt.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define DIGIT "0123456789"

void v_error(struct vctx *v, struct doc_pos pos, const char *suggestion, const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	if (suggestion)
		strbuf_addf(&msg, "; did you mean \"%s\"?", suggestion);
	if (v->bound)
		strbuf_addstr(&msg, " (after substituting variables)");
	diag_add(v->diags, DIAG_ERROR, v->doc->name, pos, v->ptr.buf, suggestion, "%s", msg.buf);
	strbuf_release(&msg);
}

void v_warning(struct vctx *v, struct doc_pos pos, const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	if (v->bound)
		strbuf_addstr(&msg, " (after substituting variables)");
	diag_add(v->diags, DIAG_WARNING, v->doc->name, pos, v->ptr.buf, NULL, "%s", msg.buf);
	strbuf_release(&msg);
}

size_t v_push(struct vctx *v, const char *key)
{
	size_t saved = v->ptr.len;
	json_pointer_push(&v->ptr, key);
	return saved;
}

size_t v_push_index(struct vctx *v, size_t index)
{
	size_t saved = v->ptr.len;
	json_pointer_push_index(&v->ptr, index);
	return saved;
}

void v_pop(struct vctx *v, size_t saved)
{
	strbuf_truncate(&v->ptr, saved);
}

bool v_room(const struct vctx *v)
{
	return v->diags->len < PLAN_MAX_DIAGS;
}

const void *v_first_seen(struct strmap *seen, const char *name, const void *item)
{
	const void *first = strmap_get(seen, name, strlen(name));
	if (!first)
		strmap_put(seen, name, strlen(name), (void *)(uintptr_t)item);
	return first;
}

bool v_deferred(const struct vctx *v, const struct doc_node *value)
{
	return !v->bound && value->kind == DOC_STRING && strstr(value->u.string.s, "${") != NULL;
}

void describe_found(struct strbuf *out, const struct doc_node *node)
{
	switch (node->kind) {
	case DOC_STRING:
		strbuf_addstr(out, "the string ");
		break;
	case DOC_NUMBER:
		strbuf_addstr(out, "the number ");
		break;
	default:
		break;
	}
	doc_describe(out, node);
}

/* "a string", "a string or an object" ... from a T_* set. */
static void describe_types(struct strbuf *out, unsigned types)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = { { T_BOOL, "true or false" }, { T_INTEGER, "a whole number" },
		      { T_NUMBER, "a number" },    { T_STRING, "a string" },
		      { T_ARRAY, "a list" },       { T_OBJECT, "an object" },
		      { T_NULL, "null" } };
	if (types & T_NUMBER)
		types &= ~T_INTEGER;
	size_t n = 0, total = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		total += (types & names[i].bit) != 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(types & names[i].bit))
			continue;
		if (n)
			strbuf_addstr(out, n + 1 == total ? " or " : ", ");
		strbuf_addstr(out, names[i].name);
		n++;
	}
}

/* A number without a fraction: every integer, and whole numbers too large for one. */
static bool is_whole(const struct doc_node *node)
{
	return node->u.number.is_integer || node->u.number.value == floor(node->u.number.value);
}

static bool type_accepted(const struct doc_node *node, unsigned types)
{
	switch (node->kind) {
	case DOC_NULL:
		return types & T_NULL;
	case DOC_BOOL:
		return types & T_BOOL;
	case DOC_NUMBER:
		/* A whole number past int64 is a range error, not a type error (below). */
		return (types & T_NUMBER) || ((types & T_INTEGER) && is_whole(node));
	case DOC_STRING:
		return types & T_STRING;
	case DOC_ARRAY:
		return types & T_ARRAY;
	case DOC_OBJECT:
		return types & T_OBJECT;
	}
	return false;
}

static size_t utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xC0) != 0x80;
	return n;
}

static void range_error(struct vctx *v, const struct doc_node *value, const struct field_spec *spec)
{
	struct strbuf lim = STRBUF_INIT;
	if (spec->max > spec->min)
		strbuf_addf(&lim, "between %.15g and %.15g", spec->min, spec->max);
	if (spec->unit) {
		strbuf_addf(&lim, " %s", spec->unit);
		if (!strcmp(spec->unit, "seconds") && spec->max >= 60) {
			strbuf_addstr(&lim, " (");
			duration_format(&lim, (int64_t)spec->max);
			strbuf_addstr(&lim, ")");
		}
	}
	struct strbuf found = STRBUF_INIT;
	doc_describe(&found, value);
	v_error(v, value->pos, NULL, "\"%s\" must be %s, found %s", spec->name, lim.buf, found.buf);
	strbuf_release(&lim);
	strbuf_release(&found);
}

/* True if s is a plain decimal number, as JSON writes one: -12, 0, 1.5. */
static bool is_decimal_text(const char *s)
{
	if (*s == '-')
		s++;
	size_t whole = strspn(s, DIGIT);
	if (!whole)
		return false;
	s += whole;
	if (*s == '.') {
		size_t frac = strspn(s + 1, DIGIT);
		if (!frac)
			return false;
		s += 1 + frac;
	}
	return *s == '\0';
}

void schema_check_value(struct vctx *v, const struct doc_node *value, const struct field_spec *spec)
{
	if (!type_accepted(value, spec->types)) {
		struct strbuf want = STRBUF_INIT, found = STRBUF_INIT;
		describe_types(&want, spec->types);
		describe_found(&found, value);
		const char *hint = "";
		if (value->kind == DOC_STRING && (spec->types & (T_INTEGER | T_NUMBER)) &&
		    value->u.string.quoted && is_decimal_text(value->u.string.s))
			hint = " (remove the quotes)";
		else if (value->kind == DOC_NUMBER && (spec->types & T_INTEGER) &&
		         !(spec->types & T_NUMBER))
			hint = " (no fractions)";
		v_error(v, value->pos, NULL, "\"%s\" must be %s, found %s%s", spec->name, want.buf,
		        found.buf, hint);
		strbuf_release(&want);
		strbuf_release(&found);
		return;
	}
	switch (value->kind) {
	case DOC_NUMBER:
		if (spec->max > spec->min &&
		    (value->u.number.value < spec->min || value->u.number.value > spec->max)) {
			range_error(v, value, spec);
			return;
		}
		if (!(spec->types & T_NUMBER) && !value->u.number.is_integer) {
			/* Whole, but past int64: only a field without a range gets here. */
			struct strbuf found = STRBUF_INIT;
			doc_describe(&found, value);
			v_error(v, value->pos, NULL, "\"%s\" is too large, found %s", spec->name,
			        found.buf);
			strbuf_release(&found);
			return;
		}
		break;
	case DOC_STRING:
		if (memchr(value->u.string.s, '\0', value->u.string.len)) {
			v_error(v, value->pos, NULL, "\"%s\" contains a NUL character", spec->name);
			return;
		}
		if ((spec->flags & F_NONEMPTY) && value->u.string.len == 0) {
			v_error(v, value->pos, NULL, "\"%s\" must not be empty", spec->name);
			return;
		}
		if (spec->max_len &&
		    utf8_chars(value->u.string.s, value->u.string.len) > spec->max_len &&
		    !v_deferred(v, value)) {
			v_error(v, value->pos, NULL, "\"%s\" is longer than %zu characters",
			        spec->name, spec->max_len);
			return;
		}
		if (spec->choices && !v_deferred(v, value)) {
			const char *const *c;
			for (c = spec->choices; *c; c++)
				if (!strcmp(*c, value->u.string.s))
					break;
			if (!*c) {
				struct strbuf list = STRBUF_INIT, found = STRBUF_INIT;
				for (c = spec->choices; *c; c++)
					strbuf_addf(&list, "%s%s", c == spec->choices ? "" : ", ",
					            *c);
				doc_describe(&found, value);
				v_error(v, value->pos,
				        suggest_closest(value->u.string.s, spec->choices),
				        "\"%s\" must be one of %s, found %s", spec->name, list.buf,
				        found.buf);
				strbuf_release(&list);
				strbuf_release(&found);
				return;
			}
		}
		break;
	case DOC_ARRAY:
		if ((spec->flags & F_NONEMPTY) && value->u.array.len == 0) {
			v_error(v, value->pos, NULL, "\"%s\" must not be an empty list",
			        spec->name);
			return;
		}
		break;
	case DOC_OBJECT:
		if ((spec->flags & F_NONEMPTY) && value->u.object.len == 0) {
			v_error(v, value->pos, NULL, "\"%s\" must not be an empty object",
			        spec->name);
			return;
		}
		break;
	default:
		break;
	}
	if (spec->check)
		spec->check(v, value);
}

static const struct field_spec *find_field(const struct field_spec *const *tables, const char *name)
{
	for (const struct field_spec *const *t = tables; *t; t++)
		for (const struct field_spec *f = *t; f->name; f++)
			if (!strcmp(f->name, name))
				return f;
	return NULL;
}

bool schema_check_object(struct vctx *v, const struct doc_node *node,
                         const struct field_spec *const *tables, const char *what)
{
	if (node->kind != DOC_OBJECT) {
		struct strbuf found = STRBUF_INIT;
		describe_found(&found, node);
		v_error(v, node->pos, NULL, "%s must be an object, found %s", what, found.buf);
		strbuf_release(&found);
		return false;
	}
	const char *names[128];
	size_t nnames = 0;
	for (const struct field_spec *const *t = tables; *t; t++)
		for (const struct field_spec *f = *t; f->name && nnames < 127; f++)
			names[nnames++] = f->name;
	names[nnames] = NULL;

	struct strmap seen = STRMAP_INIT;
	for (size_t i = 0; i < node->u.object.len; i++) {
		const struct doc_member *m = &node->u.object.members[i];
		size_t saved = v_push(v, m->key);
		const struct doc_member *first = v_first_seen(&seen, m->key, m);
		const struct field_spec *spec = find_field(tables, m->key);
		if (first) {
			v_error(v, m->key_pos, NULL,
			        "\"%s\" is given twice in %s (first at line %u)", m->key, what,
			        (unsigned)first->key_pos.line);
		} else if (!spec) {
			v_error(v, m->key_pos, v_room(v) ? suggest_closest(m->key, names) : NULL,
			        "unknown field \"%s\" in %s", m->key, what);
		} else {
			schema_check_value(v, m->value, spec);
		}
		v_pop(v, saved);
	}
	strmap_release(&seen);
	for (const struct field_spec *const *t = tables; *t; t++) {
		for (const struct field_spec *f = *t; f->name; f++) {
			if ((f->flags & F_REQUIRED) && !doc_member(node, f->name)) {
				size_t saved = v_push(v, f->name);
				v_error(v, node->pos, NULL, "%s needs a \"%s\" field", what,
				        f->name);
				v_pop(v, saved);
			}
		}
	}
	return true;
}

void check_string_list(struct vctx *v, const struct doc_node *value)
{
	if (value->kind != DOC_ARRAY)
		return;
	struct strmap seen = STRMAP_INIT;
	for (size_t i = 0; i < value->u.array.len; i++) {
		const struct doc_node *item = value->u.array.items[i];
		size_t saved = v_push_index(v, i);
		if (item->kind != DOC_STRING) {
			struct strbuf found = STRBUF_INIT;
			describe_found(&found, item);
			v_error(v, item->pos, NULL, "list items must be strings, found %s",
			        found.buf);
			strbuf_release(&found);
		} else if (item->u.string.len == 0) {
			v_error(v, item->pos, NULL, "list items must not be empty");
		} else if (v_first_seen(&seen, item->u.string.s, item)) {
			v_error(v, item->pos, NULL, "\"%s\" is listed twice", item->u.string.s);
		}
		v_pop(v, saved);
	}
	strmap_release(&seen);
}

void check_unique_keys(struct vctx *v, const struct doc_node *value, const char *what)
{
	if (value->kind == DOC_ARRAY) {
		for (size_t i = 0; i < value->u.array.len; i++) {
			size_t saved = v_push_index(v, i);
			check_unique_keys(v, value->u.array.items[i], what);
			v_pop(v, saved);
		}
		return;
	}
	if (value->kind != DOC_OBJECT)
		return;
	struct strmap seen = STRMAP_INIT;
	for (size_t i = 0; i < value->u.object.len; i++) {
		const struct doc_member *m = &value->u.object.members[i];
		size_t saved = v_push(v, m->key);
		const struct doc_member *first = v_first_seen(&seen, m->key, m);
		if (first)
			v_error(v, m->key_pos, NULL,
			        "\"%s\" is given twice in %s (first at line %u)", m->key, what,
			        (unsigned)first->key_pos.line);
		else
			check_unique_keys(v, m->value, what);
		v_pop(v, saved);
	}
	strmap_release(&seen);
}

void check_no_control_chars(struct vctx *v, const struct doc_node *value)
{
	if (value->kind != DOC_STRING)
		return;
	for (size_t i = 0; i < value->u.string.len; i++) {
		unsigned char c = (unsigned char)value->u.string.s[i];
		if (c < 0x20 || c == 0x7F) {
			v_error(v, value->pos, NULL, "names may not contain control characters");
			return;
		}
	}
}

bool str_all_in(const char *s, const char *set)
{
	return s[strspn(s, set)] == '\0';
}

bool str_is_ident(const char *s)
{
	return s[0] && !strchr(DIGIT, s[0]) && str_all_in(s, LOWER UPPER DIGIT "_");
}

void check_env_name(struct vctx *v, const struct doc_node *value)
{
	if (value->kind == DOC_STRING && !v_deferred(v, value) && !str_is_ident(value->u.string.s))
		v_error(
		    v, value->pos, NULL,
		    "\"%s\" is not a valid environment variable name (letters, digits and _, not "
		    "starting with a digit)",
		    value->u.string.s);
}
