/*
 * strmap.c - open-addressing hash map with linear probing (see strmap.h).
 */
#include "util/strmap.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

struct strmap_slot {
	const char *key; /* NULL: empty slot */
	size_t len;
	uint64_t hash;
	void *value;
};

/* FNV-1a, 64 bits. */
static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3u;
	}
	return h;
}

static struct strmap_slot *find_slot(const struct strmap *map, const char *key, size_t len,
                                     uint64_t hash)
{
	size_t mask = map->cap - 1;
	for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
		struct strmap_slot *s = &map->slots[i];
		if (!s->key || (s->hash == hash && s->len == len && !memcmp(s->key, key, len)))
			return s;
	}
}

void *strmap_get(const struct strmap *map, const char *key, size_t len)
{
	if (!map->cap)
		return NULL;
	struct strmap_slot *s = find_slot(map, key, len, hash_bytes(key, len));
	return s->key ? s->value : NULL;
}

static void grow(struct strmap *map)
{
	struct strmap old = *map;
	map->cap = old.cap ? old.cap * 2 : 16;
	map->slots = xcalloc(map->cap, sizeof(*map->slots));
	for (size_t i = 0; i < old.cap; i++) {
		struct strmap_slot *o = &old.slots[i];
		if (o->key)
			*find_slot(map, o->key, o->len, o->hash) = *o;
	}
	free(old.slots);
}

void *strmap_put(struct strmap *map, const char *key, size_t len, void *value)
{
	if ((map->len + 1) * 4 > map->cap * 3) /* keep the load under 3/4 */
		grow(map);
	uint64_t hash = hash_bytes(key, len);
	struct strmap_slot *s = find_slot(map, key, len, hash);
	void *previous = s->key ? s->value : NULL;
	if (!s->key) {
		s->key = key;
		s->len = len;
		s->hash = hash;
		map->len++;
	}
	s->value = value;
	return previous;
}

void strmap_release(struct strmap *map)
{
	free(map->slots);
	*map = (struct strmap)STRMAP_INIT;
}
