/*
 * strmap.h - a hash map from byte strings to pointers.
 *
 * For lookups whose count the input controls (object keys, step names,
 * YAML anchors, variables): every operation is expected O(1), so checking
 * n names for duplicates costs O(n), never O(n^2).
 *
 * Keys are borrowed: the caller keeps each key's bytes alive and unchanged
 * while it is in the map. Values are opaque pointers, never NULL.
 */
#ifndef STEPPY_STRMAP_H
#define STEPPY_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_slot;

struct strmap {
	struct strmap_slot *slots; /* NULL until the first put */
	size_t cap;                /* a power of two, or 0 */
	size_t len;                /* keys in the map */
};

#define STRMAP_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* The value of key, or NULL. */
void *strmap_get(const struct strmap *map, const char *key, size_t len);

/*
 * Sets key to value and returns the value it had before, or NULL if it was
 * not in the map (so a non-NULL result means a duplicate).
 */
void *strmap_put(struct strmap *map, const char *key, size_t len, void *value);

/* Frees the table (not the keys or values) and leaves an empty map. */
void strmap_release(struct strmap *map);

#endif
