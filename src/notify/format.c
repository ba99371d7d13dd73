/*
 * format.c - a notice as every channel kind sees it (channel-type.h): its
 * texts copied, made valid UTF-8, cut to caps and cleaned of control
 * characters (struct notice_text); its facts, its link's label, and the
 * plain text that mail and SNS send. Each kind's own payload (Slack's Block
 * Kit, a Teams card, a mail) is in the kind's file.
 *
 * Every text that reaches a service is cut to what the service accepts
 * (Slack rejects a header over 150 characters with HTTP 400), and what the
 * service would read as markup is escaped (Slack's <!channel> would ping a
 * whole channel).
 */
#include "notify/notify-internal.h"

#include "util/alloc.h"
#include "util/timefmt.h"
#include "util/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SUBJECT 250   /* bytes of a notice's subject */
#define MAX_MESSAGE 16384 /* bytes of a notice's message */
#define MAX_FIELD   256   /* bytes of an id, plan, environment, stage or step name */
#define MAX_URL     2048

#define ELLIPSIS "\xE2\x80\xA6" /* U+2026, marks a text that was cut */

/* ---- text helpers ---------------------------------------------------------------------------- */

static bool is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* Bytes of the first max_chars characters of s (valid UTF-8), and whether that is all of s. */
static size_t prefix_chars(const char *s, size_t max_chars, bool *all)
{
	size_t i = 0, n = 0;
	while (s[i] && n < max_chars) {
		i++;
		while (is_cont((unsigned char)s[i]))
			i++;
		n++;
	}
	*all = s[i] == '\0';
	return i;
}

/*
 * A copy of s, made valid UTF-8 and cut to max bytes at a character boundary
 * (with an ellipsis, within max). one_line: control characters become spaces
 * and the ends are trimmed; else CRLF and CR become LF and other control
 * characters but tab become spaces. NULL if s is NULL or ends up empty.
 */
static char *clean_copy(const char *s, size_t max, bool one_line)
{
	if (!s)
		return NULL;
	char *c = xstrndup(s, max + 4);
	utf8_sanitize(c);
	size_t len = strlen(c);
	if (len > max) {
		len = max - 3;
		while (len && is_cont((unsigned char)c[len]))
			len--;
		memcpy(c + len, ELLIPSIS, 4);
		len += 3;
	}
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)c[i];
		if (!one_line && ch == '\r') {
			c[o++] = '\n';
			if (i + 1 < len && c[i + 1] == '\n')
				i++;
		} else if (ch < 0x20 || ch == 0x7F) {
			c[o++] = !one_line && (ch == '\n' || ch == '\t') ? (char)ch : ' ';
		} else {
			c[o++] = (char)ch;
		}
	}
	c[o] = '\0';
	if (one_line) {
		size_t start = strspn(c, " ");
		while (o > start && c[o - 1] == ' ')
			o--;
		memmove(c, c + start, o - start);
		c[o - start] = '\0';
	}
	if (!*c) {
		free(c);
		return NULL;
	}
	return c;
}

static bool url_ok(const char *u)
{
	if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
		return false;
	for (const unsigned char *p = (const unsigned char *)u; *p; p++)
		if (*p <= 0x20 || *p == 0x7F)
			return false;
	return strlen(u) <= MAX_URL;
}

static const char *default_title(const char *kind)
{
	static const struct {
		const char *kind, *title;
	} titles[] = {
		{ "approval", "Approval needed" },    { "started", "Release started" },
		{ "succeeded", "Release succeeded" }, { "failed", "Release failed" },
		{ "aborted", "Release aborted" },
	};
	for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
		if (!strcmp(kind, titles[i].kind))
			return titles[i].title;
	return "Notification";
}

void notice_text_init(struct notice_text *t, const struct notice *n, int64_t now_ms)
{
	*t = (struct notice_text){ 0 };
	t->kind = clean_copy(n->kind, 64, true);
	if (!t->kind)
		t->kind = xstrdup("notify");
	t->subject = clean_copy(n->subject, MAX_SUBJECT, true);
	t->message = clean_copy(n->message, MAX_MESSAGE, false);
	if (!t->message)
		t->message = xstrdup("");
	t->execution_id = clean_copy(n->execution_id, MAX_FIELD, true);
	t->plan = clean_copy(n->plan, MAX_FIELD, true);
	t->environment = clean_copy(n->environment, MAX_FIELD, true);
	t->stage = clean_copy(n->stage, MAX_FIELD, true);
	t->step = clean_copy(n->step, MAX_FIELD, true);
	if (n->approval_url && url_ok(n->approval_url))
		t->url = xstrdup(n->approval_url);
	if (t->subject)
		t->title = xstrdup(t->subject);
	else if (t->plan)
		t->title = xstrfmt("%s: %s", default_title(t->kind), t->plan);
	else
		t->title = xstrdup(default_title(t->kind));
	t->time_ms = n->time_ms ? n->time_ms : now_ms;
	if (n->decide_ref && *n->decide_ref && strlen(n->decide_ref) <= 1000) {
		bool printable = true;
		for (const unsigned char *p = (const unsigned char *)n->decide_ref; *p; p++)
			printable &= *p >= 0x20 && *p < 0x7F;
		if (printable)
			t->decide_ref = xstrdup(n->decide_ref);
	}
	t->outcome = clean_copy(n->outcome, MAX_SUBJECT, true);
	if (n->to) {
		/* local@domain, printable, nothing that could end a header or add one */
		const char *at = strchr(n->to, '@');
		bool ok =
		    at && at != n->to && at[1] && !strchr(at + 1, '@') && strlen(n->to) <= 254;
		for (const char *p = n->to; ok && *p; p++)
			ok = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f &&
			     !strchr("<>,;:\"\\()[]", *p);
		if (ok)
			t->to = xstrdup(n->to);
		else
			t->bad_to = true;
	}
}

void notice_text_release(struct notice_text *t)
{
	char **fields[] = { &t->kind,        &t->title,        &t->subject,
		            &t->message,     &t->execution_id, &t->plan,
		            &t->environment, &t->stage,        &t->step,
		            &t->url,         &t->decide_ref,   &t->outcome,
		            &t->to };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		free(*fields[i]);
		*fields[i] = NULL;
	}
}

const char *notice_link_label(const struct notice_text *t)
{
	/* once decided (an outcome, no buttons left), the page only shows what happened */
	bool open = !strcmp(t->kind, "approval") && (!t->outcome || t->decide_ref);
	return open ? "Review and decide" : "Open in steppy";
}

size_t notice_facts(const struct notice_text *t, const char *labels[5], const char *values[5])
{
	const char *l[] = { "Release", "Plan", "Environment", "Stage", "Step" };
	const char *v[] = { t->execution_id, t->plan, t->environment, t->stage, t->step };
	size_t n = 0;
	for (size_t i = 0; i < 5; i++)
		if (v[i]) {
			labels[n] = l[i];
			values[n++] = v[i];
		}
	return n;
}

void add_chars(struct strbuf *out, const char *s, size_t max_chars)
{
	bool all;
	size_t n = prefix_chars(s, max_chars, &all);
	if (all) {
		strbuf_add(out, s, n);
		return;
	}
	n = prefix_chars(s, max_chars - 1, &all);
	strbuf_add(out, s, n);
	strbuf_addstr(out, ELLIPSIS);
}

char *json_dump_compact(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s) {
		fputs("steppy: out of memory\n", stderr);
		abort();
	}
	return s;
}

json_t *json_take_string(struct strbuf *sb)
{
	json_t *j = json_stringn(sb->buf, sb->len);
	strbuf_reset(sb);
	return j;
}

/* ---- plain text: mail and SNS ---------------------------------------------------------------- */

void format_text(const struct notice_text *t, const char *nl, struct strbuf *out)
{
	bool any = false;
	for (const char *p = t->message; *p; p++) {
		if (*p == '\n')
			strbuf_addstr(out, nl);
		else
			strbuf_addch(out, *p);
		any = true;
	}
	if (any)
		strbuf_addstr(out, nl);
	const char *labels[5], *values[5];
	size_t n = notice_facts(t, labels, values);
	if (n && any)
		strbuf_addstr(out, nl);
	for (size_t i = 0; i < n; i++)
		strbuf_addf(out, "%s: %s%s", labels[i], values[i], nl);
	if (t->url)
		strbuf_addf(out, "%s%s: %s%s", n || any ? nl : "", notice_link_label(t), t->url,
		            nl);
}
