/*
 * utf8.h - UTF-8 checks.
 */
#ifndef STEPPY_UTF8_H
#define STEPPY_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if invalid. */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* Replaces every byte that is not part of valid UTF-8 with '?', in place. */
void utf8_sanitize(char *s);

#endif
