/*
 * sheet.c - the workbook grid shared by the spreadsheet readers and writers.
 */
#include "sheet/sheet.h"

#include <stdlib.h>
#include <strings.h>

const struct cell *sheet_cell(const struct sheet *sheet, uint32_t row, uint32_t col)
{
	if (row >= sheet->rows || col >= sheet->cols)
		return NULL;
	return &sheet->cells[(size_t)row * sheet->cols + col];
}

const struct sheet *workbook_sheet(const struct workbook *book, const char *name)
{
	for (size_t i = 0; i < book->len; i++)
		if (strcasecmp(book->sheets[i].name, name) == 0)
			return &book->sheets[i];
	return NULL;
}

void sheet_cell_name(char *buf, uint32_t row, uint32_t col)
{
	char letters[8];
	size_t n = 0;
	uint64_t c = (uint64_t)col + 1;
	while (c > 0 && n < sizeof(letters)) {
		letters[n++] = (char)('A' + (c - 1) % 26);
		c = (c - 1) / 26;
	}
	size_t i = 0;
	while (n > 0)
		buf[i++] = letters[--n];
	uint64_t r = (uint64_t)row + 1;
	char digits[12];
	n = 0;
	do {
		digits[n++] = (char)('0' + r % 10);
		r /= 10;
	} while (r > 0);
	while (n > 0)
		buf[i++] = digits[--n];
	buf[i] = '\0';
}

bool sheet_cell_parse(const char *text, uint32_t *ret_row, uint32_t *ret_col)
{
	const char *p = text;
	uint64_t col = 0;
	while (*p >= 'A' && *p <= 'Z') {
		col = col * 26 + (uint64_t)(*p - 'A' + 1);
		if (col > SHEET_MAX_COLS)
			return false;
		p++;
	}
	if (col == 0 || *p < '1' || *p > '9')
		return false;
	uint64_t row = 0;
	while (*p >= '0' && *p <= '9') {
		row = row * 10 + (uint64_t)(*p - '0');
		if (row > SHEET_MAX_ROWS)
			return false;
		p++;
	}
	if (*p != '\0')
		return false;
	*ret_row = (uint32_t)(row - 1);
	*ret_col = (uint32_t)(col - 1);
	return true;
}

void workbook_free(struct workbook *book)
{
	for (size_t i = 0; i < book->len; i++) {
		struct sheet *s = &book->sheets[i];
		for (size_t j = 0; j < (size_t)s->rows * s->cols; j++)
			free(s->cells[j].text);
		free(s->cells);
		free(s->name);
	}
	free(book->sheets);
	book->sheets = NULL;
	book->len = 0;
}
