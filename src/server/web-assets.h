/*
 * web-assets.h - the dashboard's files (web/), compiled into the binary.
 *
 * The table is not written by hand: at build time tools/embed turns every
 * file of web/ into $(BUILD)/gen/web-assets.c (see the Makefile), which is
 * part of libsteppy. web.c serves the entries.
 */
#ifndef STEPPY_SERVER_WEB_ASSETS_H
#define STEPPY_SERVER_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *name;          /* the file's base name ("app.js"); NULL ends the table */
	const unsigned char *data; /* len bytes, followed by a NUL that len does not count */
	size_t len;
	const char *etag; /* "\"<16 hex digits>\"": a 64-bit FNV-1a hash of the bytes */
};

/* Every file of web/, in name order; ends with an entry whose name is NULL. */
extern const struct web_asset web_assets[];

#endif
