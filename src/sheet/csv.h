/*
 * csv.h - comma-separated files (RFC 4180) as a workbook of one sheet.
 *
 * A CSV file holds one sheet; a plan in CSV keeps its other sheets
 * (Variables, defaults) as sections of the same file (docs/spreadsheets.md).
 */
#ifndef STEPPY_SHEET_CSV_H
#define STEPPY_SHEET_CSV_H

#include "sheet/sheet.h"
#include "util/strbuf.h"

/*
 * Reads the CSV file at path into *book (empty on entry). Returns 0, or a
 * negative SP_E* code with one line in err naming the line and column
 * ("3:17: unterminated quoted field"), without the file's own name.
 */
int csv_read(const char *path, struct workbook *book, struct strbuf *err);

/* Writes book to path as CSV. Returns 0, or a negative SP_E* code with the reason in err. */
int csv_write(const char *path, const struct workbook *book, struct strbuf *err);

#endif
