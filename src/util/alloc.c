/*
 * alloc.c - allocation wrappers that abort on exhaustion (see alloc.h).
 */
#include "util/alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void out_of_memory(size_t size)
{
	fprintf(stderr, "steppy: fatal: out of memory allocating %zu bytes\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		out_of_memory(size);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		out_of_memory(nmemb * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (!p)
		out_of_memory(size);
	return p;
}

void *xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	if (size && nmemb > SIZE_MAX / size)
		out_of_memory(SIZE_MAX);
	return xrealloc(ptr, nmemb * size);
}

char *xstrdup(const char *s)
{
	return xmemdup0(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	return xmemdup0(s, strnlen(s, n));
}

char *xmemdup0(const void *data, size_t n)
{
	if (n == SIZE_MAX)
		out_of_memory(n);
	char *p = xmalloc(n + 1);
	if (n)
		memcpy(p, data, n);
	p[n] = '\0';
	return p;
}
