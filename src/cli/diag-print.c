/*
 * diag-print.c - shows diagnostics to people (text with source lines) and
 * to programs (JSON).
 */
#include "cli/cli.h"

#include "util/alloc.h"
#include "util/strbuf.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define SNIPPET_CHARS    100  /* longest stretch of a source line shown */
#define SNIPPET_MAX_LINE 4096 /* longer lines (minified JSON) get no snippet */

/* Finds line `line` (1-based) of the document; returns its start and byte length. */
static const char *find_line(const struct doc *doc, const size_t *starts, size_t nlines,
                             uint32_t line, size_t *len)
{
	if (line == 0 || line > nlines)
		return NULL;
	size_t b = starts[line - 1];
	size_t e = line < nlines ? starts[line] - 1 : doc->text_len;
	/* A byte order mark is not a column (doc.h): leave it out so the caret lines up. */
	if (line == 1 && e - b >= 3 && !memcmp(doc->text, "\xEF\xBB\xBF", 3))
		b += 3;
	if (e > b && doc->text[e - 1] == '\r')
		e--;
	*len = e - b;
	return doc->text + b;
}

/* Byte offset of character number `chars` (0-based) in s, at most len. */
static size_t char_offset(const char *s, size_t len, size_t chars)
{
	size_t i = 0;
	while (i < len && chars > 0) {
		i++;
		while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
			i++;
		chars--;
	}
	return i;
}

static void print_snippet(FILE *f, const char *line, size_t len, uint32_t col, bool colour)
{
	/* Show a window of the line around the column, for long (minified) lines. */
	size_t chars = 0;
	for (size_t i = 0; i < len; i++)
		chars += ((unsigned char)line[i] & 0xC0) != 0x80;
	size_t first =
	    chars > SNIPPET_CHARS && col > SNIPPET_CHARS / 2 ? col - SNIPPET_CHARS / 2 : 1;
	size_t b = char_offset(line, len, first - 1);
	size_t e = b + char_offset(line + b, len - b, SNIPPET_CHARS);
	const char *more_before = b > 0 ? "..." : "";
	const char *more_after = e < len ? "..." : "";
	fprintf(f, "  | %s", more_before);
	for (size_t i = b; i < e; i++) {
		unsigned char c = (unsigned char)line[i];
		fputc(c < 0x20 && c != '\t' ? ' ' : c, f);
	}
	fprintf(f, "%s\n  | %s", more_after, more_before);
	/* Keep tabs so the caret lines up with the text above it. */
	size_t caret = char_offset(line + b, len - b, col - first);
	for (size_t i = 0; i < caret; i++) {
		unsigned char c = (unsigned char)line[b + i];
		if ((c & 0xC0) == 0x80)
			continue;
		fputc(c == '\t' ? '\t' : ' ', f);
	}
	fprintf(f, "%s^%s\n", colour ? "\033[1;32m" : "", colour ? "\033[0m" : "");
}

void diag_print_text(FILE *f, const struct diag_list *dl, const struct doc *doc, bool colour)
{
	size_t *starts = NULL, nlines = 0;
	if (doc) {
		size_t alloc = 64;
		starts = xmalloc(alloc * sizeof(*starts));
		starts[nlines++] = 0;
		for (size_t i = 0; i < doc->text_len; i++) {
			if (doc->text[i] != '\n')
				continue;
			if (nlines == alloc) {
				alloc *= 2;
				starts = xreallocarray(starts, alloc, sizeof(*starts));
			}
			starts[nlines++] = i + 1;
		}
	}
	const char *bold = colour ? "\033[1m" : "", *red = colour ? "\033[1;31m" : "",
	           *magenta = colour ? "\033[1;35m" : "", *reset = colour ? "\033[0m" : "";
	for (size_t i = 0; i < dl->len; i++) {
		const struct diag *d = &dl->items[i];
		const char *sev = d->severity == DIAG_ERROR ? "error" : "warning";
		const char *sev_colour = d->severity == DIAG_ERROR ? red : magenta;
		if (d->pos.line)
			fprintf(f, "%s%s:%u:%u:%s ", bold, d->file, (unsigned)d->pos.line,
			        (unsigned)d->pos.col, reset);
		else
			fprintf(f, "%s%s:%s ", bold, d->file, reset);
		fprintf(f, "%s%s:%s ", sev_colour, sev, reset);
		if (d->pointer)
			fprintf(f, "%s%s:%s ", bold, *d->pointer ? d->pointer : "/", reset);
		fprintf(f, "%s\n", d->message);
		size_t len;
		const char *line = doc && !strcmp(doc->name, d->file)
		                       ? find_line(doc, starts, nlines, d->pos.line, &len)
		                       : NULL;
		if (line && d->pos.col && len <= SNIPPET_MAX_LINE)
			print_snippet(f, line, len, d->pos.col, colour);
	}
	if (dl->dropped)
		fprintf(f, "%s: %zu more problems not shown\n",
		        dl->len ? dl->items[0].file : "plan", dl->dropped);
	free(starts);
}

struct json_t *diag_to_json(const struct diag_list *dl)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < dl->len; i++) {
		const struct diag *d = &dl->items[i];
		json_t *o = json_object();
		json_object_set_new(o, "severity",
		                    json_string(d->severity == DIAG_ERROR ? "error" : "warning"));
		json_object_set_new(o, "file", json_string(d->file));
		json_object_set_new(o, "line",
		                    d->pos.line ? json_integer(d->pos.line) : json_null());
		json_object_set_new(o, "column",
		                    d->pos.col ? json_integer(d->pos.col) : json_null());
		json_object_set_new(o, "pointer",
		                    d->pointer ? json_string(d->pointer) : json_null());
		json_object_set_new(o, "message", json_string(d->message));
		json_object_set_new(o, "suggestion",
		                    d->suggestion ? json_string(d->suggestion) : json_null());
		json_array_append_new(arr, o);
	}
	return arr;
}
