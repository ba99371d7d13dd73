/*
 * format.c - a notice in each service's format (see notify-internal.h):
 * Slack's Block Kit message, a Microsoft Teams Adaptive Card, the generic
 * webhook's JSON, an RFC 5322 mail, SNS's subject and text, a log line.
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

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SUBJECT 250   /* bytes of a notice's subject */
#define MAX_MESSAGE 16384 /* bytes of a notice's message */
#define MAX_FIELD   256   /* bytes of an id, plan, environment, stage or step name */
#define MAX_URL     2048

#define ELLIPSIS "\xE2\x80\xA6" /* U+2026, marks a text that was cut */

#define SLACK_HEADER_CHARS  150  /* Block Kit: header text */
#define SLACK_SECTION_CHARS 3000 /* Block Kit: section text, and the fallback text */
#define TEAMS_MESSAGE_CHARS 10000
#define SNS_SUBJECT_CHARS   99 /* "less than 100 characters" */

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

/* The facts of a notice as label/value pairs; returns how many (at most 5). */
static size_t facts(const struct notice_text *t, const char *labels[5], const char *values[5])
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

/* Appends s cut to max_chars characters (an ellipsis marks the cut). */
static void add_chars(struct strbuf *out, const char *s, size_t max_chars)
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

static char *dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!s) {
		fputs("steppy: out of memory\n", stderr);
		abort();
	}
	return s;
}

/* A jansson string of sb's text; sb is emptied. */
static json_t *take_string(struct strbuf *sb)
{
	json_t *j = json_stringn(sb->buf, sb->len);
	strbuf_reset(sb);
	return j;
}

/* ---- Slack ----------------------------------------------------------------------------------- */

/*
 * Appends s escaped for Slack's mrkdwn (&, <, > as entities, so nothing in a
 * message becomes a link or a mention), at most max_chars characters of
 * output, never cutting an entity.
 */
static void slack_escape(struct strbuf *out, const char *s, size_t max_chars)
{
	size_t used = 0;
	for (size_t i = 0; s[i];) {
		size_t k = 1;
		while (is_cont((unsigned char)s[i + k]))
			k++;
		const char *rep = s[i] == '&'   ? "&amp;"
		                  : s[i] == '<' ? "&lt;"
		                  : s[i] == '>' ? "&gt;"
		                                : NULL;
		size_t w = rep ? strlen(rep) : 1;
		/* keep room for the ellipsis unless this is the last character */
		if (used + w > max_chars || (used + w == max_chars && s[i + k])) {
			strbuf_addstr(out, ELLIPSIS);
			return;
		}
		if (rep)
			strbuf_addstr(out, rep);
		else
			strbuf_add(out, s + i, k);
		used += w;
		i += k;
	}
}

/* The message: the fallback "text" and the "blocks"; buttons: Approve and Reject. */
static json_t *slack_message(const struct notice_text *t, bool buttons)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *blocks = json_array();

	add_chars(&sb, t->title, SLACK_HEADER_CHARS);
	json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:o, s:b}}", "type", "header",
	                                        "text", "type", "plain_text", "text",
	                                        take_string(&sb), "emoji", 1));
	if (*t->message) {
		slack_escape(&sb, t->message, SLACK_SECTION_CHARS);
		json_array_append_new(blocks,
		                      json_pack("{s:s, s:{s:s, s:o}}", "type", "section", "text",
		                                "type", "mrkdwn", "text", take_string(&sb)));
	}
	const char *labels[5], *values[5];
	size_t n = facts(t, labels, values);
	for (size_t i = 0; i < n; i++)
		strbuf_addf(&sb, "%s%s %s", i ? " \xC2\xB7 " : "", labels[i], values[i]);
	if (n)
		json_array_append_new(blocks, json_pack("{s:s, s:[{s:s, s:o}]}", "type", "context",
		                                        "elements", "type", "plain_text", "text",
		                                        take_string(&sb)));
	if (t->outcome) {
		add_chars(&sb, t->outcome, SLACK_SECTION_CHARS);
		json_array_append_new(blocks,
		                      json_pack("{s:s, s:{s:s, s:o}}", "type", "section", "text",
		                                "type", "plain_text", "text", take_string(&sb)));
	}
	json_t *elements = json_array();
	if (buttons && t->decide_ref) {
		json_array_append_new(elements,
		                      json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:s}", "type",
		                                "button", "text", "type", "plain_text", "text",
		                                "Approve", "style", "primary", "action_id",
		                                "steppy-approve", "value", t->decide_ref));
		json_array_append_new(
		    elements,
		    json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}, "
		              "s:{s:s, s:s}, s:{s:s, s:s}}}",
		              "type", "button", "text", "type", "plain_text", "text", "Reject",
		              "style", "danger", "action_id", "steppy-reject", "value",
		              t->decide_ref, "confirm", "title", "type", "plain_text", "text",
		              "Reject?", "text", "type", "plain_text", "text",
		              "The release stops at this step.", "confirm", "type", "plain_text",
		              "text", "Reject", "deny", "type", "plain_text", "text", "Cancel"));
	}
	if (t->url) {
		/* primary unless Approve is */
		bool primary = !json_array_size(elements);
		json_array_append_new(
		    elements,
		    json_pack("{s:s, s:{s:s, s:s}, s:s, s:s*, s:s}", "type", "button", "text",
		              "type", "plain_text", "text", notice_link_label(t), "url", t->url,
		              "style", primary ? "primary" : NULL, "action_id", "steppy-open"));
	}
	if (json_array_size(elements))
		json_array_append_new(
		    blocks, json_pack("{s:s, s:o}", "type", "actions", "elements", elements));
	else
		json_decref(elements);

	/* The fallback text, for notifications and clients without blocks. */
	slack_escape(&sb, t->title, SLACK_HEADER_CHARS);
	if (*t->message) {
		strbuf_addstr(&sb, "\n");
		slack_escape(&sb, t->message, SLACK_SECTION_CHARS - SLACK_HEADER_CHARS - 1);
	}
	json_t *msg = json_pack("{s:o, s:o}", "text", take_string(&sb), "blocks", blocks);
	strbuf_release(&sb);
	return msg;
}

char *format_slack(const struct notice_text *t)
{
	return dump(slack_message(t, false));
}

char *format_slack_api(const struct notice_text *t, const char *slack_channel, const char *ts,
                       bool buttons)
{
	json_t *msg = slack_message(t, buttons);
	json_t *j = json_pack("{s:s}", "channel", slack_channel);
	if (ts)
		json_object_set_new(j, "ts", json_string(ts));
	json_object_update_new(j, msg);
	if (!ts) /* a preview would fetch the approval page for everyone in the channel */
		json_object_update_new(
		    j, json_pack("{s:b, s:b}", "unfurl_links", 0, "unfurl_media", 0));
	return dump(j);
}

/* ---- Microsoft Teams ------------------------------------------------------------------------- */

/*
 * A RichTextBlock of TextRuns (label bold, then text). Teams reads Markdown in
 * a TextBlock's text and in a FactSet's titles and values, so a message or a
 * step name such as "[Click to approve](https://elsewhere.example)" would
 * become a live link there; a TextRun's text is never read as Markdown
 * (Adaptive Cards 1.2+), so every text of a notice goes in TextRuns.
 */
static json_t *teams_text(const char *label, json_t *text, const char *size, bool spaced)
{
	json_t *inlines = json_array();
	if (label)
		json_array_append_new(inlines, json_pack("{s:s, s:s+, s:s}", "type", "TextRun",
		                                         "text", label, ": ", "weight", "Bolder"));
	json_t *run = json_pack("{s:s, s:o}", "type", "TextRun", "text", text);
	if (size)
		json_object_update_new(run,
		                       json_pack("{s:s, s:s}", "size", size, "weight", "Bolder"));
	json_array_append_new(inlines, run);
	json_t *block = json_pack("{s:s, s:o}", "type", "RichTextBlock", "inlines", inlines);
	if (!spaced)
		json_object_set_new(block, "spacing", json_string("None"));
	return block;
}

/*
 * An Adaptive Card (1.4) in the message envelope that both Teams webhooks
 * take: the Workflows app's "When a Teams webhook request is received" and
 * the retiring Office 365 connectors' incoming webhooks.
 */
char *format_teams(const struct notice_text *t)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *body = json_array();
	json_array_append_new(body, teams_text(NULL, json_string(t->title), "Large", true));
	if (*t->message) {
		add_chars(&sb, t->message, TEAMS_MESSAGE_CHARS);
		json_array_append_new(body, teams_text(NULL, take_string(&sb), NULL, true));
	}
	const char *labels[5], *values[5];
	size_t n = facts(t, labels, values);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(body,
		                      teams_text(labels[i], json_string(values[i]), NULL, !i));
	json_t *card = json_pack("{s:s, s:s, s:s, s:o}", "$schema",
	                         "http://adaptivecards.io/schemas/adaptive-card.json", "type",
	                         "AdaptiveCard", "version", "1.4", "body", body);
	if (t->url)
		json_object_set_new(card, "actions",
		                    json_pack("[{s:s, s:s, s:s}]", "type", "Action.OpenUrl",
		                              "title", notice_link_label(t), "url", t->url));
	strbuf_release(&sb);
	return dump(json_pack("{s:s, s:[{s:s, s:n, s:o}]}", "type", "message", "attachments",
	                      "contentType", "application/vnd.microsoft.card.adaptive",
	                      "contentUrl", "content", card));
}

/* ---- generic webhook ------------------------------------------------------------------------- */

char *format_webhook(const struct notice_text *t)
{
	struct strbuf time = STRBUF_INIT;
	rfc3339_format(&time, t->time_ms);
	json_t *j = json_pack(
	    "{s:s, s:s?, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s}", "kind", t->kind, "subject",
	    t->subject, "message", t->message, "executionId", t->execution_id, "plan", t->plan,
	    "environment", t->environment, "stage", t->stage, "step", t->step,
	    !strcmp(t->kind, "approval") ? "approvalUrl" : "releaseUrl", t->url, "time", time.buf);
	strbuf_release(&time);
	return dump(j);
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
	size_t n = facts(t, labels, values);
	if (n && any)
		strbuf_addstr(out, nl);
	for (size_t i = 0; i < n; i++)
		strbuf_addf(out, "%s: %s%s", labels[i], values[i], nl);
	if (t->url)
		strbuf_addf(out, "%s%s: %s%s", n || any ? nl : "", notice_link_label(t), t->url,
		            nl);
}

void format_sns_subject(const struct notice_text *t, struct strbuf *out)
{
	add_chars(out, t->title, SNS_SUBJECT_CHARS);
}

/* ---- mail ------------------------------------------------------------------------------------ */

void qp_encode(const char *s, size_t len, struct strbuf *out)
{
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' && i + 1 < len && s[i + 1] == '\n') {
			strbuf_addstr(out, "\r\n");
			col = 0;
			i++;
			continue;
		}
		bool eol = i + 1 == len || (s[i + 1] == '\r' && i + 2 < len && s[i + 2] == '\n');
		char enc[4];
		size_t n = 1;
		enc[0] = (char)c;
		/* Literal: printable ASCII but '=', and blanks not ending a line. */
		if (!((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !eol)))
			n = (size_t)snprintf(enc, sizeof(enc), "=%02X", c);
		if (col + n > 75) { /* a soft line break keeps lines within 76 characters */
			strbuf_addstr(out, "=\r\n");
			col = 0;
		}
		strbuf_add(out, enc, n);
		col += n;
	}
}

void mime_header_encode(const char *text, struct strbuf *out)
{
	bool plain = strstr(text, "=?") == NULL;
	for (const unsigned char *p = (const unsigned char *)text; *p && plain; p++)
		plain = *p >= 0x20 && *p < 0x7F;
	if (plain) {
		strbuf_addstr(out, text);
		return;
	}
	/* Encoded words of at most 75 characters: 45 bytes of text each, whole characters. */
	const char *s = text;
	while (*s) {
		size_t n = strlen(s);
		if (n > 45) {
			n = 45;
			while (n && is_cont((unsigned char)s[n]))
				n--;
		}
		unsigned char b64[64];
		int k = EVP_EncodeBlock(b64, (const unsigned char *)s, (int)n);
		strbuf_addf(out, "%s=?UTF-8?B?%.*s?=", s == text ? "" : "\r\n ", k, (char *)b64);
		s += n;
	}
}

static void rfc5322_date(struct strbuf *out, int64_t ms)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strbuf_addf(out, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
	            months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void format_email(const struct notice_text *t, const struct channel *c, const char *message_id,
                  struct strbuf *out)
{
	strbuf_addstr(out, "Date: ");
	rfc5322_date(out, t->time_ms);
	strbuf_addf(out, "\r\nFrom: %s\r\nTo: ", c->from);
	size_t col = 4;
	if (t->to)
		strbuf_addstr(out, t->to);
	for (size_t i = 0; !t->to && i < c->nto; i++) {
		size_t w = strlen(c->to[i]);
		if (i && col + w + 2 > 78) { /* fold long recipient lists */
			strbuf_addstr(out, ",\r\n ");
			col = 1;
		} else if (i) {
			strbuf_addstr(out, ", ");
			col += 2;
		}
		strbuf_addstr(out, c->to[i]);
		col += w;
	}
	strbuf_addstr(out, "\r\nSubject: ");
	mime_header_encode(t->title, out);
	strbuf_addf(out,
	            "\r\nMessage-ID: <%s>\r\n"
	            "MIME-Version: 1.0\r\n"
	            "Content-Type: text/plain; charset=utf-8\r\n"
	            "Content-Transfer-Encoding: quoted-printable\r\n"
	            "Auto-Submitted: auto-generated\r\n"
	            "\r\n",
	            message_id);
	struct strbuf text = STRBUF_INIT;
	format_text(t, "\r\n", &text);
	qp_encode(text.buf, text.len, out);
	strbuf_release(&text);
}

/* ---- log ------------------------------------------------------------------------------------- */

static void add_field(struct strbuf *out, const char *s)
{
	strbuf_addch(out, '\t');
	if (!s || !*s) {
		strbuf_addch(out, '-');
		return;
	}
	for (; *s; s++)
		strbuf_addch(out, *s == '\n' || *s == '\t' ? ' ' : *s);
}

void format_log_line(const struct notice_text *t, struct strbuf *out)
{
	rfc3339_format(out, t->time_ms);
	add_field(out, t->kind);
	add_field(out, t->execution_id);
	add_field(out, t->title);
	add_field(out, t->message);
	add_field(out, t->url);
	strbuf_addch(out, '\n');
}
