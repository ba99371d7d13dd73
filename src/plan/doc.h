/*
 * doc.h - a parsed plan file: a tree of values that remember where they were.
 *
 * Both plan syntaxes, JSON with comments and YAML, are read into this one
 * tree so that everything after parsing (validation, variable binding, the
 * plan model) is written once. Every value and every object key carries its
 * line and column, which is what lets diagnostics point at the exact spot;
 * general JSON libraries (jansson) drop positions, hence this small tree.
 *
 * Ownership: a struct doc owns its text and every node, all allocated from
 * its arena; nodes are read-only after parsing and die with doc_free().
 * YAML aliases make some subtrees shared, so the tree is a DAG: never free
 * or modify nodes individually. (The node an alias yields is a shallow copy
 * of the anchored one carrying the alias's own position; its children are
 * shared.)
 */
#ifndef STEPPY_PLAN_DOC_H
#define STEPPY_PLAN_DOC_H

#include "plan/diag.h"
#include "util/arena.h"
#include "util/strbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum doc_kind { DOC_NULL, DOC_BOOL, DOC_NUMBER, DOC_STRING, DOC_ARRAY, DOC_OBJECT };
enum doc_syntax { DOC_JSONC, DOC_YAML };

struct doc_node;

struct doc_member {
	const char *key; /* NUL-terminated; key_len bytes (keys may not hold NUL) */
	size_t key_len;
	struct doc_pos key_pos;
	struct doc_node *value;
};

struct doc_node {
	enum doc_kind kind;
	struct doc_pos pos; /* where the value starts */
	union {
		bool boolean;
		struct {
			double value;
			int64_t integer; /* valid when is_integer */
			bool is_integer; /* a whole number that fits int64, however written
			                    (10, 10.0 and 1e1 all are) */
		} number;
		struct {
			const char *s; /* NUL-terminated, but may hold NUL bytes: use len */
			size_t len;
			bool quoted; /* written in quotes: every JSON string, YAML '...' and
			                "..." (not plain or block scalars) */
		} string;
		struct {
			struct doc_node **items;
			size_t len;
		} array;
		struct {
			struct doc_member *members; /* in file order; duplicates kept */
			size_t len;
		} object;
	} u;
};

struct doc {
	char *name; /* display name: the path, or "<stdin>" */
	char *text; /* the source, NUL-terminated */
	size_t text_len;
	enum doc_syntax syntax;
	struct doc_node *root; /* NULL unless parsing succeeded */
	struct arena arena;    /* owns every node and string */
	size_t nodes;          /* values created, limited by PLAN_MAX_NODES */
};

/*
 * Reads and parses the plan at path ("-" for standard input). The syntax is
 * chosen by extension (.json/.jsonc, .yaml/.yml) or else by the first
 * non-blank character ('{', '[' or '/' mean JSON). Never falls back from one
 * syntax to the other.
 *
 * Returns 0 and sets *ret_doc on success. On failure adds one diagnostic
 * to diags and returns SP_EIO or SP_ETOOBIG (the file could not be read;
 * *ret_doc untouched) or SP_ESYNTAX (*ret_doc is set, with root NULL, so
 * callers can still show source lines).
 */
int doc_load(const char *path, struct doc **ret_doc, struct diag_list *diags);

/* As doc_load, for text in memory (copied); name is used in diagnostics. */
int doc_parse(const char *name, const char *text, size_t len, enum doc_syntax syntax,
              struct doc **ret_doc, struct diag_list *diags);

/* Guesses the syntax of text named name, as doc_load does. */
enum doc_syntax doc_guess_syntax(const char *name, const char *text, size_t len);

/* Frees the document and every node. Accepts NULL. */
void doc_free(struct doc *doc);

/* Returns the value of the first member named key, or NULL. obj may be NULL or a non-object. */
struct doc_node *doc_get(const struct doc_node *obj, const char *key);
/* Like doc_get, also returning the member (for its key position). */
const struct doc_member *doc_member(const struct doc_node *obj, const char *key);

/* "a string", "an object", ... for messages. */
const char *doc_kind_name(enum doc_kind kind);

/* Appends a short human rendering of a value for messages: strings quoted and cut at 40
 * characters, numbers in their shortest exact form, "a list", "an object". */
void doc_describe(struct strbuf *out, const struct doc_node *node);

/*
 * Where to report a problem with child, found inside container: child's own
 * position, unless child lies before container's start, which happens only
 * when container is a YAML alias (its children are those of the anchored
 * value, written earlier); then the alias's position, so that a problem the
 * alias causes (a duplicate) is not shown at the text it copies.
 */
struct doc_pos doc_pos_in(const struct doc_node *container, const struct doc_node *child);

/* Appends one JSON-pointer segment ("/name", escaping ~ and /) to ptr. */
void json_pointer_push(struct strbuf *ptr, const char *segment);
void json_pointer_push_index(struct strbuf *ptr, size_t index);

/* Internal to the readers: a new node, or NULL past PLAN_MAX_NODES. */
struct doc_node *doc_node_new(struct doc *doc, enum doc_kind kind, struct doc_pos pos);

/* Internal to the readers: sets *ret to v and returns true if v is a whole
 * number within int64's range, else returns false. */
bool doc_whole_int64(double v, int64_t *ret);

/* Internal to the readers: returns 0 if text is UTF-8 without NUL bytes,
 * else adds a diagnostic naming the spot (a leading byte order mark is not
 * a column) and returns SP_ESYNTAX. */
int doc_check_text(const struct doc *doc, struct diag_list *diags);

int jsonc_parse(struct doc *doc, struct diag_list *diags);
int yaml_parse(struct doc *doc, struct diag_list *diags);

#endif
