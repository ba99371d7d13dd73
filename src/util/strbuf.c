/*
 * strbuf.c - growable, optionally capped string buffer (see strbuf.h).
 */
#include "util/strbuf.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/utf8.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char strbuf_empty[1];

void strbuf_init(struct strbuf *sb, size_t max)
{
	sb->buf = strbuf_empty;
	sb->len = 0;
	sb->alloc = 0;
	sb->max = max;
}

void strbuf_release(struct strbuf *sb)
{
	if (sb->alloc)
		free(sb->buf);
	strbuf_init(sb, sb->max);
}

void strbuf_reset(struct strbuf *sb)
{
	strbuf_truncate(sb, 0);
}

void strbuf_truncate(struct strbuf *sb, size_t len)
{
	if (len < sb->len) {
		sb->len = len;
		sb->buf[len] = '\0';
	}
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
	char *out = sb->alloc ? sb->buf : xstrdup("");
	if (len)
		*len = sb->len;
	strbuf_init(sb, sb->max);
	return out;
}

/* Makes room for extra more bytes plus the NUL. */
static int strbuf_grow(struct strbuf *sb, size_t extra)
{
	if (extra > sb->max - sb->len || extra >= SIZE_MAX - sb->len)
		return SP_ETOOBIG;
	size_t need = sb->len + extra + 1;
	if (need <= sb->alloc)
		return 0;
	size_t alloc = sb->alloc ? sb->alloc : 64;
	while (alloc < need)
		alloc = alloc > SIZE_MAX / 2 ? need : alloc * 2;
	if (sb->alloc) {
		sb->buf = xrealloc(sb->buf, alloc);
	} else {
		sb->buf = xmalloc(alloc);
		sb->buf[0] = '\0';
	}
	sb->alloc = alloc;
	return 0;
}

int strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	int r = strbuf_grow(sb, len);
	if (r < 0)
		return r;
	if (len)
		memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
	return 0;
}

int strbuf_addstr(struct strbuf *sb, const char *s)
{
	return strbuf_add(sb, s, strlen(s));
}

int strbuf_addch(struct strbuf *sb, char c)
{
	return strbuf_add(sb, &c, 1);
}

int strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return SP_EINVAL;
	int r = strbuf_grow(sb, (size_t)n);
	if (r < 0)
		return r;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
	return 0;
}

int strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = strbuf_vaddf(sb, fmt, ap);
	va_end(ap);
	return r;
}

char *xstrfmt(const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	return strbuf_detach(&sb, NULL);
}

int strbuf_add_escaped(struct strbuf *out, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	int r = 0;
	for (size_t i = 0; i < len && r == 0;) {
		size_t n = utf8_seq_len(s + i, len - i);
		bool c1 = n == 2 && s[i] == 0xC2 && s[i + 1] < 0xA0; /* U+0080..U+009F */
		if (n == 0 || c1 || s[i] < 0x20 || s[i] == 0x7F || s[i] == '\\') {
			if (s[i] == '\n')
				r = strbuf_addstr(out, "\\n");
			else if (s[i] == '\t')
				r = strbuf_addstr(out, "\\t");
			else if (s[i] == '\r')
				r = strbuf_addstr(out, "\\r");
			else if (s[i] == '\\')
				r = strbuf_addstr(out, "\\\\");
			else
				r = strbuf_addf(out, "\\x%02x", s[i]);
			i += 1;
			continue;
		}
		r = strbuf_add(out, s + i, n);
		i += n;
	}
	return r;
}

char *str_mask(char *text, char *const *words, size_t min_len)
{
	for (size_t k = 0; words && words[k]; k++) {
		size_t n = strlen(words[k]);
		if (n < min_len || !strstr(text, words[k]))
			continue;
		struct strbuf out = STRBUF_INIT;
		const char *p = text, *hit;
		while ((hit = strstr(p, words[k]))) {
			strbuf_add(&out, p, (size_t)(hit - p));
			strbuf_addstr(&out, "****");
			p = hit + n;
		}
		strbuf_addstr(&out, p);
		free(text);
		text = strbuf_detach(&out, NULL);
	}
	return text;
}
