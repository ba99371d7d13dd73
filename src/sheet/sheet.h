/*
 * sheet.h - a workbook read from a spreadsheet file: named sheets of cells.
 *
 * The readers (.csv in sheet-csv.c, .xlsx in sheet-xlsx.c) turn a file into
 * this grid and the writers turn a grid back into a file; the plan layer
 * maps grids to and from plans. A cell keeps the text a person sees in it
 * and the kind of value it held, so a diagnostic can name the cell
 * (release.xlsx:Steps!D7) and a number keeps its exact digits.
 *
 * Ownership: a struct workbook owns every sheet, cell and string in it;
 * workbook_free() releases them all.
 */
#ifndef STEPPY_SHEET_H
#define STEPPY_SHEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits a reader enforces on any input, so a hostile file stays small. */
#define SHEET_MAX_SHEETS     64
#define SHEET_MAX_ROWS       100000u
#define SHEET_MAX_COLS       256u
#define SHEET_MAX_CELLS      1000000u
#define SHEET_MAX_CELL_BYTES (1u << 20)

enum cell_kind { CELL_EMPTY, CELL_STRING, CELL_NUMBER, CELL_BOOL, CELL_DATE };

struct cell {
	enum cell_kind kind;
	/*
	 * UTF-8, NUL-terminated; NULL when kind is CELL_EMPTY. Numbers are the
	 * shortest decimal that reads back to the same double ("10", "0.5");
	 * booleans "TRUE" or "FALSE"; dates ISO 8601 ("2026-12-03", or
	 * "2026-12-03T10:00:00" when the cell holds a time of day).
	 */
	char *text;
};

struct sheet {
	char *name;    /* "Steps"; a CSV file's one sheet is named after the file */
	uint32_t rows; /* bounding box of the non-empty cells, counted from A1 */
	uint32_t cols;
	struct cell *cells; /* rows * cols, row-major: see sheet_cell() */
};

struct workbook {
	struct sheet *sheets; /* in the file's order */
	size_t len;
};

#define WORKBOOK_INIT                                                                              \
	{                                                                                          \
		NULL, 0                                                                            \
	}

/* The cell at 0-based row and col, or NULL outside the sheet. */
const struct cell *sheet_cell(const struct sheet *sheet, uint32_t row, uint32_t col);

/* The sheet named name (compared as spreadsheet software does, ignoring ASCII case), or NULL. */
const struct sheet *workbook_sheet(const struct workbook *book, const char *name);

/*
 * Writes the A1-style name of the 0-based row and col ("D7" for row 6,
 * col 3) into buf, which holds at least SHEET_CELL_NAME_MAX bytes.
 */
#define SHEET_CELL_NAME_MAX 16
void sheet_cell_name(char *buf, uint32_t row, uint32_t col);

/*
 * Parses an A1-style reference ("D7", as in an .xlsx file's r attribute;
 * no '$', no sheet name) into 0-based *ret_row and *ret_col. Returns false
 * when text is not one, or names a cell past SHEET_MAX_ROWS/SHEET_MAX_COLS.
 */
bool sheet_cell_parse(const char *text, uint32_t *ret_row, uint32_t *ret_col);

/* Frees every sheet and leaves book empty. Accepts an empty workbook. */
void workbook_free(struct workbook *book);

#endif
