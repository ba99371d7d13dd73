/*
 * utf8.c - UTF-8 validation (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF).
 */
#include "util/utf8.h"

#include <string.h>

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned cp, min;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2, cp = c & 0x1Fu, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3, cp = c & 0x0Fu, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4, cp = c & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3Fu);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

void utf8_sanitize(char *s)
{
	size_t n = strlen(s);
	size_t i = 0;
	while (i < n) {
		size_t k = utf8_seq_len((unsigned char *)s + i, n - i);
		if (k == 0) {
			s[i] = '?';
			k = 1;
		}
		i += k;
	}
}
