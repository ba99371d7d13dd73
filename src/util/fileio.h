/*
 * fileio.h - reading whole files with a size cap.
 */
#ifndef STEPPY_FILEIO_H
#define STEPPY_FILEIO_H

#include "util/strbuf.h"

#include <stddef.h>

/*
 * Reads all of path ("-" means standard input) into a new NUL-terminated
 * buffer. Refuses directories and anything larger than max bytes without
 * reading it all: regular files are checked with fstat first, pipes are
 * read up to max + 1 bytes.
 *
 * On success returns 0, sets *ret_data (caller frees) and *ret_len.
 * On failure returns SP_EIO or SP_ETOOBIG, writes nothing to the ret_
 * arguments, and appends a lowercase reason to err ("is a directory").
 */
int read_file_capped(const char *path, size_t max, char **ret_data, size_t *ret_len,
                     struct strbuf *err);

/* Formats a byte count for people: "812 bytes", "8.0 MiB". */
void format_bytes(struct strbuf *out, size_t n);

#endif
