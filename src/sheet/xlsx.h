/*
 * xlsx.h - Office Open XML workbooks (.xlsx): read with libzip and libxml2,
 * written with libxlsxwriter.
 *
 * No Debian C library reads .xlsx, so the reader is written here: it opens
 * the zip, follows the workbook's relationships to each worksheet, and
 * reads shared strings, inline strings, numbers, booleans and dates (by
 * their number format) into a struct workbook. Everything in the file is
 * hostile: sizes are checked before inflating (zip bombs), XML is parsed
 * without entities or network access, and the limits of sheet.h apply.
 */
#ifndef STEPPY_SHEET_XLSX_H
#define STEPPY_SHEET_XLSX_H

#include "sheet/sheet.h"
#include "util/strbuf.h"

/*
 * Reads the workbook at path into *book (empty on entry). Returns 0, or a
 * negative SP_E* code with one line in err naming, when it can, the sheet
 * and cell ("Steps!D7: merged cells cannot hold a plan") or the part of the
 * zip ("xl/worksheets/sheet1.xml:3:10: ..."), without the file's own name
 * (the caller adds it). Merged cells, formulas without a cached value and
 * other things a plan cannot hold are refused clearly. On failure *book is
 * left empty.
 */
int xlsx_read(const char *path, struct workbook *book, struct strbuf *err);

/*
 * Writes book to path as an .xlsx file (the first row of each sheet is a
 * header: bold and frozen). Returns 0, or a negative SP_E* code with the
 * reason in err.
 */
int xlsx_write(const char *path, const struct workbook *book, struct strbuf *err);

#endif
