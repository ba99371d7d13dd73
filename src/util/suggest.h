/*
 * suggest.h - "did you mean ...?" for misspelt names.
 */
#ifndef STEPPY_SUGGEST_H
#define STEPPY_SUGGEST_H

#include <stddef.h>

/*
 * Returns the candidate closest to word by edit distance (insertions,
 * deletions, substitutions and swaps of neighbours; case differences cost
 * nothing extra if that is the only difference), or NULL when none is close
 * enough to be a plausible typo. candidates is a NULL-terminated list; the
 * result points into it.
 */
const char *suggest_closest(const char *word, const char *const *candidates);

/* Optimal-string-alignment distance between a and b, case-sensitive. */
size_t edit_distance(const char *a, const char *b);

#endif
