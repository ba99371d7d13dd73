/*
 * arena.c - bump allocator (see arena.h).
 */
#include "util/arena.h"

#include "util/alloc.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK_SIZE  ((size_t)64 * 1024)
#define ARENA_FIRST_CHUNK ((size_t)1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t size; /* bytes usable in data */
	size_t used; /* bytes handed out of data */
	alignas(max_align_t) unsigned char data[];
};

void *arena_alloc(struct arena *a, size_t size)
{
	const size_t align = alignof(max_align_t);
	if (size > SIZE_MAX - align)
		abort();
	size = (size + align - 1) & ~(align - 1);
	struct arena_chunk *c = a->chunks;
	if (!c || c->size - c->used < size) {
		/* Chunks double from 1 KiB to 64 KiB, so a small document costs little. */
		size_t next = c ? (c->size < ARENA_CHUNK_SIZE ? c->size * 2 : ARENA_CHUNK_SIZE)
		                : ARENA_FIRST_CHUNK;
		size_t cap = size > next / 4 ? (size > next ? size : next) : next;
		c = xmalloc(sizeof(*c) + cap);
		c->size = cap;
		c->used = 0;
		c->next = a->chunks;
		a->chunks = c;
	}
	void *p = c->data + c->used;
	c->used += size;
	a->used += size;
	return p;
}

void *arena_alloc_array(struct arena *a, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		abort();
	return arena_alloc(a, n * size);
}

char *arena_memdup0(struct arena *a, const void *data, size_t n)
{
	if (n == SIZE_MAX)
		abort();
	char *p = arena_alloc(a, n + 1);
	if (n)
		memcpy(p, data, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_memdup0(a, s, strlen(s));
}

void arena_release(struct arena *a)
{
	struct arena_chunk *c = a->chunks;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->chunks = NULL;
	a->used = 0;
}
