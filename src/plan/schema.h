/*
 * schema.h - table-driven checking of plan objects.
 *
 * A plan object (the plan, a stage, a step, a retry policy ...) is described
 * by field tables: each field's name, accepted value types, whether it is
 * required, its range or choices, and an optional extra check. One function,
 * schema_check_object(), applies the tables: wrong types, missing and unknown
 * fields (with "did you mean"), duplicates, ranges and choices all produce
 * diagnostics at the offending value's position and JSON pointer. Step types
 * describe their fields with the same tables (see plan/step-type.h).
 */
#ifndef STEPPY_PLAN_SCHEMA_H
#define STEPPY_PLAN_SCHEMA_H

#include "plan/doc.h"
#include "util/strbuf.h"
#include "util/strmap.h"

#include <stdbool.h>

/* Accepted value types, a bit set. */
#define T_NULL    (1u << 0)
#define T_BOOL    (1u << 1)
#define T_INTEGER (1u << 2) /* a whole number (10, 10.0, 1e1); past int64 it is out of range */
#define T_NUMBER  (1u << 3) /* any number */
#define T_STRING  (1u << 4)
#define T_ARRAY   (1u << 5)
#define T_OBJECT  (1u << 6)
#define T_ANY     (T_NULL | T_BOOL | T_NUMBER | T_STRING | T_ARRAY | T_OBJECT)

/* Field flags. */
#define F_REQUIRED (1u << 0)
#define F_NONEMPTY (1u << 1) /* strings, lists and objects must not be empty */

struct vctx;

struct field_spec {
	const char *name;
	unsigned types;             /* T_* accepted */
	unsigned flags;             /* F_* */
	double min, max;            /* range for numbers, checked when min < max */
	size_t max_len;             /* most characters in a string; 0: no limit */
	const char *unit;           /* "seconds" adds a readable duration to range errors */
	const char *const *choices; /* NULL-terminated list of accepted strings, or NULL */
	/* Further checks once the type is right; may be NULL. */
	void (*check)(struct vctx *v, const struct doc_node *value);
};

/* State of one validation pass. */
struct vctx {
	const struct doc *doc;
	struct diag_list *diags;
	struct strbuf ptr; /* JSON pointer of the value being checked */
	bool bound;        /* variables are substituted: check every string's format */
	const struct doc_node *variables; /* the plan's "variables" object, or NULL */
	struct strmap declared;           /* names of the declared variables */
	const char **var_names; /* declared names for suggestions, NULL-terminated; owned */
	size_t nvar_names;      /* entries in var_names */
	size_t suggest_budget;  /* name comparisons left for variable suggestions */
};

/* Reports an error at pos for the value at the current pointer. */
void v_error(struct vctx *v, struct doc_pos pos, const char *suggestion, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reports a warning (the plan stays valid) at pos for the value at the current pointer. */
void v_warning(struct vctx *v, struct doc_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Pointer navigation: push returns the length to restore with v_pop. */
size_t v_push(struct vctx *v, const char *key);
size_t v_push_index(struct vctx *v, size_t index);
void v_pop(struct vctx *v, size_t saved);

/*
 * Checks that node is an object whose fields are described by the
 * NULL-terminated list of field tables (each table ends with a field whose
 * name is NULL). what names the object in messages ("a stage", "a CodeBuild
 * step"). Returns false if node is not an object at all.
 */
bool schema_check_object(struct vctx *v, const struct doc_node *node,
                         const struct field_spec *const *tables, const char *what);

/* Checks one value against one field spec (type, range, choices, check). */
void schema_check_value(struct vctx *v, const struct doc_node *value,
                        const struct field_spec *spec);

/* True while diagnostics are still kept (not past PLAN_MAX_DIAGS): skip
 * costly extras such as suggestions once they would be dropped anyway. */
bool v_room(const struct vctx *v);

/* Duplicate detection in O(1): returns the item first recorded under name,
 * or NULL after recording item as the first. */
const void *v_first_seen(struct strmap *seen, const char *name, const void *item);

/* True if a string value still holds a ${...} reference to substitute later,
 * so format checks must wait until variables are bound. */
bool v_deferred(const struct vctx *v, const struct doc_node *value);

/* Appends "the string \"x\"", "the number 3", "a list" ... for messages. */
void describe_found(struct strbuf *out, const struct doc_node *node);

/* Common checks usable as field_spec.check. */
void check_string_list(struct vctx *v,
                       const struct doc_node *value); /* non-empty, unique strings */
void check_no_control_chars(struct vctx *v, const struct doc_node *value);
void check_env_name(struct vctx *v, const struct doc_node *value); /* [A-Za-z_][A-Za-z0-9_]* */
/* Reports keys given twice in any object within value (a free-form value such
 * as a Lambda payload), naming what it is in ("the payload"). Recursion is
 * bounded by the readers' nesting cap. */
void check_unique_keys(struct vctx *v, const struct doc_node *value, const char *what);

/* Pattern helpers for format checks: simple character-class matching. */
bool str_all_in(const char *s, const char *set);
bool str_is_ident(const char *s);

#endif
