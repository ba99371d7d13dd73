/*
 * diag.h - diagnostics: what is wrong with a plan, and exactly where.
 *
 * Each diagnostic names a file, a line and column (1-based, counted in
 * characters), the JSON pointer of the offending value (RFC 6901; NULL for
 * syntax errors, which have no value yet), a message for a release engineer
 * and, for misspellings, the name that was probably meant.
 *
 * A list keeps at most PLAN_MAX_DIAGS entries; later ones are only counted
 * in `dropped`. The list owns all its strings.
 */
#ifndef STEPPY_PLAN_DIAG_H
#define STEPPY_PLAN_DIAG_H

#include <stddef.h>
#include <stdint.h>

struct doc_pos {
	uint32_t line; /* 1-based; 0 when the problem is the file as a whole */
	uint32_t col;  /* 1-based, in Unicode characters */
};

enum diag_severity { DIAG_ERROR, DIAG_WARNING };

struct diag {
	enum diag_severity severity;
	char *file; /* display name of the plan */
	struct doc_pos pos;
	char *pointer;    /* JSON pointer, "" for the root; NULL if there is no value */
	char *message;    /* one line, no trailing period */
	char *suggestion; /* what was probably meant, or NULL */
};

struct diag_list {
	struct diag *items;
	size_t len;
	size_t alloc;
	size_t errors;  /* diagnostics of severity DIAG_ERROR, dropped ones included */
	size_t dropped; /* diagnostics past PLAN_MAX_DIAGS, counted but not kept */
};

#define DIAG_LIST_INIT                                                                             \
	{                                                                                          \
		NULL, 0, 0, 0, 0                                                                   \
	}

/* Appends a diagnostic; pointer and suggestion may be NULL. Copies everything. */
void diag_add(struct diag_list *dl, enum diag_severity sev, const char *file, struct doc_pos pos,
              const char *pointer, const char *suggestion, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Orders diagnostics by file (first appearance), line, then column; stable. */
void diag_list_sort(struct diag_list *dl);

void diag_list_release(struct diag_list *dl);

#endif
