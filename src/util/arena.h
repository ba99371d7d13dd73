/*
 * arena.h - a bump allocator for data that lives and dies together.
 *
 * A parsed plan document allocates thousands of small nodes and strings
 * that are all freed at once; an arena makes that one free() per chunk.
 * Allocations are aligned for any object type and never fail (see alloc.h).
 * The arena owns everything allocated from it; arena_release() frees it all.
 */
#ifndef STEPPY_ARENA_H
#define STEPPY_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *chunks; /* newest first; NULL while empty */
	size_t used;                /* bytes handed out, for limits and stats */
};

#define ARENA_INIT                                                                                 \
	{                                                                                          \
		NULL, 0                                                                            \
	}

void *arena_alloc(struct arena *a, size_t size);
/* Allocates room for n objects of size bytes; aborts on overflow. */
void *arena_alloc_array(struct arena *a, size_t n, size_t size);
/* Copies n bytes into the arena and adds a NUL. */
char *arena_memdup0(struct arena *a, const void *data, size_t n);
char *arena_strdup(struct arena *a, const char *s);
void arena_release(struct arena *a);

#endif
