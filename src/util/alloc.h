/*
 * alloc.h - allocation that never returns NULL.
 *
 * Steppy treats running out of memory as fatal (as redis and git do): the
 * x* functions print one line to stderr and abort. Every user-controlled
 * input is size-capped before it is allocated for, so exhaustion means a
 * bug or a starved machine, not bad input.
 */
#ifndef STEPPY_ALLOC_H
#define STEPPY_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows an array to hold at least nmemb elements of size bytes; checks overflow. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Copies n bytes and adds a NUL; the copy may hold NUL bytes of its own. */
char *xmemdup0(const void *data, size_t n);

#endif
