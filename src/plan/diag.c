/*
 * diag.c - the diagnostics list (see diag.h).
 */
#include "plan/diag.h"

#include "plan/limits.h"
#include "util/alloc.h"
#include "util/strbuf.h"
#include "util/utf8.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void diag_add(struct diag_list *dl, enum diag_severity sev, const char *file, struct doc_pos pos,
              const char *pointer, const char *suggestion, const char *fmt, ...)
{
	if (sev == DIAG_ERROR)
		dl->errors++;
	if (dl->len >= PLAN_MAX_DIAGS) {
		dl->dropped++;
		return;
	}
	if (dl->len == dl->alloc) {
		dl->alloc = dl->alloc ? dl->alloc * 2 : 16;
		dl->items = xreallocarray(dl->items, dl->alloc, sizeof(*dl->items));
	}
	struct strbuf msg = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);

	struct diag *d = &dl->items[dl->len++];
	d->severity = sev;
	d->file = xstrdup(file);
	d->pos = pos;
	d->pointer = pointer ? xstrdup(pointer) : NULL;
	d->message = strbuf_detach(&msg, NULL);
	d->suggestion = suggestion ? xstrdup(suggestion) : NULL;
	/* Messages quote cut pieces of input and file names come from the
	 * command line: keep everything valid UTF-8 for JSON output. */
	utf8_sanitize(d->file);
	utf8_sanitize(d->message);
	if (d->pointer)
		utf8_sanitize(d->pointer);
	if (d->suggestion)
		utf8_sanitize(d->suggestion);
}

static int pos_cmp(const struct diag *a, const struct diag *b)
{
	if (a->pos.line != b->pos.line)
		return a->pos.line < b->pos.line ? -1 : 1;
	if (a->pos.col != b->pos.col)
		return a->pos.col < b->pos.col ? -1 : 1;
	return 0;
}

void diag_list_sort(struct diag_list *dl)
{
	/* Insertion sort: stable, and lists are short and nearly sorted. Files
	 * are kept in the order they first appear. */
	for (size_t i = 1; i < dl->len; i++) {
		struct diag d = dl->items[i];
		size_t j = i;
		while (j > 0 && strcmp(dl->items[j - 1].file, d.file) == 0 &&
		       pos_cmp(&dl->items[j - 1], &d) > 0) {
			dl->items[j] = dl->items[j - 1];
			j--;
		}
		dl->items[j] = d;
	}
}

void diag_list_release(struct diag_list *dl)
{
	for (size_t i = 0; i < dl->len; i++) {
		free(dl->items[i].file);
		free(dl->items[i].pointer);
		free(dl->items[i].message);
		free(dl->items[i].suggestion);
	}
	free(dl->items);
	*dl = (struct diag_list)DIAG_LIST_INIT;
}
