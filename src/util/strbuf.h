/*
 * strbuf.h - the growable string buffer used for all text building.
 *
 * Invariants: buf is never NULL and always NUL-terminated; len is the
 * number of bytes before that NUL (the text may hold NUL bytes of its own).
 * A buffer may carry a cap (max): an append that would pass it appends
 * nothing and returns SP_ETOOBIG, so input-fed buffers stay bounded.
 *
 * Lifecycle: STRBUF_INIT or strbuf_init(); strbuf_release() frees the
 * contents and leaves an empty buffer; strbuf_detach() hands the storage
 * to the caller, who frees it with free().
 */
#ifndef STEPPY_STRBUF_H
#define STEPPY_STRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *buf;    /* never NULL; points at a shared "" while alloc == 0 */
	size_t len;   /* bytes in use, not counting the terminating NUL */
	size_t alloc; /* bytes allocated at buf, 0 while buf is the shared "" */
	size_t max;   /* most len may reach; SIZE_MAX means no cap */
};

extern char strbuf_empty[];
#define STRBUF_INIT                                                                                \
	{                                                                                          \
		strbuf_empty, 0, 0, SIZE_MAX                                                       \
	}

void strbuf_init(struct strbuf *sb, size_t max);
void strbuf_release(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb);
/* Returns the text, now owned by the caller, and leaves sb empty. */
char *strbuf_detach(struct strbuf *sb, size_t *len);

/*
 * Replaces every occurrence in text of each word at least min_len bytes
 * long by "****" (secrets in output). Takes text (heap); returns it, or a
 * new string (text is then freed). words is NULL-terminated, or NULL.
 */
char *str_mask(char *text, char *const *words, size_t min_len);
/* Shortens the text to len bytes (no-op if already shorter). */
void strbuf_truncate(struct strbuf *sb, size_t len);

/* Appenders return 0, or SP_ETOOBIG (nothing appended) past the cap. */
int strbuf_add(struct strbuf *sb, const void *data, size_t len);
int strbuf_addstr(struct strbuf *sb, const char *s);
int strbuf_addch(struct strbuf *sb, char c);
int strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * Appends text (len bytes) with every control character (C0, DEL, C1),
 * backslash and invalid UTF-8 byte escaped as \n, \t, \r, \\ or \xHH, for
 * text from outside (names, comments, reasons) that must neither forge log
 * lines nor drive a terminal. Returns 0 or SP_ENOMEM as strbuf_add() does.
 */
int strbuf_add_escaped(struct strbuf *sb, const char *text, size_t len);

/* Returns a malloc'd string built from a format; never NULL. */
char *xstrfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
