/*
 * suggest.c - nearest-name suggestions by edit distance (see suggest.h).
 */
#include "util/suggest.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Names longer than this are not typos of anything we know. */
#define SUGGEST_MAX_LEN 64

static size_t min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;
	return m < c ? m : c;
}

size_t edit_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	/* Three rows: two back (for swaps), previous, current. */
	size_t *rows = xcalloc(3 * (m + 1), sizeof(*rows));
	size_t *pp = rows, *prev = rows + (m + 1), *cur = rows + 2 * (m + 1);
	for (size_t j = 0; j <= m; j++)
		prev[j] = j;
	for (size_t i = 1; i <= n; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= m; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    pp[j - 2] + 1 < cur[j])
				cur[j] = pp[j - 2] + 1;
		}
		size_t *t = pp;
		pp = prev;
		prev = cur;
		cur = t;
	}
	size_t d = prev[m];
	free(rows);
	return d;
}

const char *suggest_closest(const char *word, const char *const *candidates)
{
	size_t wlen = strlen(word);
	if (wlen == 0 || wlen > SUGGEST_MAX_LEN)
		return NULL;
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	for (const char *const *c = candidates; *c; c++) {
		if (strcasecmp(word, *c) == 0)
			return *c;
		size_t clen = strlen(*c);
		if (clen > SUGGEST_MAX_LEN)
			continue;
		char lw[SUGGEST_MAX_LEN + 1], lc[SUGGEST_MAX_LEN + 1];
		for (size_t i = 0; i <= wlen; i++)
			lw[i] = (char)(word[i] >= 'A' && word[i] <= 'Z' ? word[i] + 32 : word[i]);
		for (size_t i = 0; i <= clen; i++)
			lc[i] = (char)((*c)[i] >= 'A' && (*c)[i] <= 'Z' ? (*c)[i] + 32 : (*c)[i]);
		size_t d = edit_distance(lw, lc);
		if (d < best_d) {
			best_d = d;
			best = *c;
		}
	}
	/* A plausible typo changes at most about a third of the longer name. */
	if (best) {
		size_t blen = strlen(best);
		size_t longest = blen > wlen ? blen : wlen;
		size_t allowed = longest / 3 ? longest / 3 : 1;
		if (best_d > allowed)
			return NULL;
	}
	return best;
}
