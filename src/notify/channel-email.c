/*
 * channel-email.c - the "email" channel kind (docs/channels.md#email): a
 * plain-text mail (RFC 5322, quoted-printable) through an SMTP server, with
 * libcurl on a thread of libuv's pool; personal approval links go to one
 * address of the notice instead of the channel's list.
 */
#include "notify/notify-internal.h"

#include "util/alloc.h"
#include "util/error.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MAX_RECIPIENTS 50

static bool is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* ---- configuration --------------------------------------------------------------------------- */

static void check_smtp_url(struct vctx *v, const struct doc_node *value)
{
	static const char *const schemes[] = { "smtp://", "smtps://", NULL };
	channel_check_url(v, value, schemes,
	                  "an smtp:// or smtps:// URL (smtps://mail.example.com:465)",
	                  "give \"username\" and \"passwordEnv\"");
}

/* A bare ASCII address, local@domain, nothing that could end a header or a command. */
static bool is_address(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || at == s || !at[1] || strchr(at + 1, '@') || strlen(s) > 254)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7F || strchr("<>()[]\\,;:\"", *p))
			return false;
	const char *d = at + 1;
	return d[0] != '.' && d[strlen(d) - 1] != '.' && !strstr(d, "..");
}

static void check_address(struct vctx *v, const struct doc_node *value)
{
	if (value->kind == DOC_STRING && !is_address(value->u.string.s))
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not a mail address such as releases@example.com (a bare "
		        "address, without a display name)",
		        value->u.string.s);
}

static void check_recipients(struct vctx *v, const struct doc_node *value)
{
	check_string_list(v, value);
	if (value->u.array.len > MAX_RECIPIENTS)
		v_error(v, value->pos, NULL,
		        "\"to\" lists more than %d addresses (use a list address)", MAX_RECIPIENTS);
	for (size_t i = 0; i < value->u.array.len; i++) {
		size_t saved = v_push_index(v, i);
		if (value->u.array.items[i]->kind == DOC_STRING &&
		    value->u.array.items[i]->u.string.len)
			check_address(v, value->u.array.items[i]);
		v_pop(v, saved);
	}
}

static const struct field_spec email_fields[] = {
	{ .name = "url",
	  .types = T_STRING,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .max_len = 2048,
	  .check = check_smtp_url },
	{ .name = "starttls", .types = T_BOOL },
	{ .name = "username",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 256,
	  .check = channel_check_one_line },
	{ .name = "passwordEnv",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .check = channel_check_env_var },
	{ .name = "from", .types = T_STRING, .flags = F_REQUIRED, .check = check_address },
	{ .name = "to",
	  .types = T_ARRAY,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .check = check_recipients },
	{ .name = NULL },
};

static const struct field_spec *const email_tables[] = { email_fields, NULL };

static void check_email(struct vctx *v, const struct doc_node *node, const char *what)
{
	(void)what;
	const struct doc_node *url = doc_get(node, "url");
	const struct doc_member *tls = doc_member(node, "starttls");
	if (tls && tls->value->kind == DOC_BOOL && tls->value->u.boolean && url &&
	    url->kind == DOC_STRING && !strncasecmp(url->u.string.s, "smtps://", 8)) {
		size_t saved = v_push(v, "starttls");
		v_error(v, tls->key_pos, NULL,
		        "\"starttls\" is for smtp:// URLs (smtps:// uses TLS from the start)");
		v_pop(v, saved);
	}
	const struct doc_member *user = doc_member(node, "username");
	const struct doc_member *pass = doc_member(node, "passwordEnv");
	if (!user != !pass) {
		const struct doc_member *m = user ? user : pass;
		size_t saved = v_push(v, m->key);
		v_error(v, m->key_pos, NULL, "\"username\" and \"passwordEnv\" go together");
		v_pop(v, saved);
	}
}

static void *parse_email(const struct doc_node *node)
{
	struct email_config *c = xcalloc(1, sizeof(*c));
	c->url = node_string(node, "url");
	const struct doc_node *tls = doc_get(node, "starttls");
	c->starttls = tls && tls->u.boolean;
	c->username = node_string(node, "username");
	c->password_env = node_string(node, "passwordEnv");
	c->from = node_string(node, "from");
	const struct doc_node *to = doc_get(node, "to");
	c->to = xcalloc(to->u.array.len, sizeof(*c->to));
	for (size_t i = 0; i < to->u.array.len; i++)
		c->to[c->nto++] = xstrdup(to->u.array.items[i]->u.string.s);
	return c;
}

static void release_email(void *config)
{
	struct email_config *c = config;
	if (!c)
		return;
	for (size_t i = 0; i < c->nto; i++)
		free(c->to[i]);
	free(c->to);
	free(c->url);
	free(c->username);
	free(c->password_env);
	free(c->from);
	free(c);
}

/* ---- the mail -------------------------------------------------------------------------------- */

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

void format_email(const struct notice_text *t, const struct channel *ch, const char *message_id,
                  struct strbuf *out)
{
	const struct email_config *c = ch->config;
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

/* ---- sending --------------------------------------------------------------------------------- */

/* What a mail needs besides the request's url, host and body (the message). */
struct mail {
	char *mail_from;
	struct curl_slist *rcpt;
	bool starttls;
	char *username, *password;
	/* the attempt on the worker thread */
	CURLcode result;
	size_t read_off; /* mail bytes handed to curl */
	char reply[256]; /* the SMTP server's last 4xx or 5xx reply, or "" */
	char errbuf[CURL_ERROR_SIZE];
};

static void mail_free(void *p)
{
	struct mail *m = p;
	free(m->mail_from);
	curl_slist_free_all(m->rcpt);
	free(m->username);
	wipe(m->password);
	free(m);
}

/*
 * Mail goes through curl_easy_perform() on a thread of libuv's pool, not
 * through the multi interface: libcurl waits for the server's answer to the
 * end of the message in a blocking loop (smtp_done runs
 * smtp_block_statemach, in 7.88 as in current releases), which would stall
 * the whole event loop for as long as the server takes to accept the mail.
 * The worker touches only the delivery's request fields, the reply buffer
 * and errbuf; the loop thread reads them after the work is done (libuv
 * orders the two). Cancelling sets abort, which the progress callback turns
 * into CURLE_ABORTED_BY_CALLBACK within a second.
 */

/* The mail of the attempt in flight: the request's data. */
static struct mail *mail_of(struct notify_delivery *d)
{
	return notify_request(d)->data;
}

static size_t mail_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct notify_delivery *d = arg;
	const struct channel_request *req = notify_request(d);
	struct mail *m = mail_of(d);
	size_t n = req->len - m->read_off;
	if (n > size * nitems)
		n = size * nitems;
	memcpy(buf, req->body + m->read_off, n);
	m->read_off += n;
	return n;
}

/* Keeps the server's last refusal (4xx, 5xx: "550 5.1.1 <x@example.com>: unknown user"); the
 * 221 answering the QUIT that follows must not hide it. */
static size_t mail_reply(char *data, size_t size, size_t nitems, void *arg)
{
	struct mail *m = mail_of(arg);
	size_t n = size * nitems, len = n;
	if (!len || (data[0] != '4' && data[0] != '5'))
		return n;
	while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	if (len >= sizeof(m->reply))
		len = sizeof(m->reply) - 1;
	memcpy(m->reply, data, len);
	m->reply[len] = '\0';
	return n;
}

static int mail_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return notify_aborted(arg);
}

/* On the worker thread: the whole SMTP transfer. */
static void mail_work(struct notify_delivery *d)
{
	const struct channel_request *req = notify_request(d);
	struct mail *m = mail_of(d);
	long timeout_ms = notify_timeout_ms(d);
	m->result = CURLE_FAILED_INIT;
	CURL *e = curl_easy_init();
	if (!e)
		return;
	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_MAIL_FROM, m->mail_from);
	curl_easy_setopt(e, CURLOPT_MAIL_RCPT, m->rcpt);
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, mail_read);
	curl_easy_setopt(e, CURLOPT_READDATA, d);
	curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->len);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, mail_reply);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, d);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, mail_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, d);
	if (m->starttls)
		curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	if (m->username) {
		curl_easy_setopt(e, CURLOPT_USERNAME, m->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, m->password);
	}
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, m->errbuf);
	m->result = curl_easy_perform(e);
	curl_easy_cleanup(e);
}

/* Back on the loop. */
static void mail_done(struct notify_delivery *d, int status)
{
	struct mail *m = mail_of(d);
	if (status == 0 && m->result == CURLE_OK) {
		notify_attempt_done(d, true, NULL, false, 0);
		return;
	}
	const char *why = status < 0                       ? uv_strerror(status)
	                  : m->result == CURLE_FAILED_INIT ? "out of memory"
	                  : *m->errbuf                     ? m->errbuf
	                                                   : curl_easy_strerror(m->result);
	char *text = m->reply[0] ? text_snippet(m->reply, strlen(m->reply)) : NULL;
	/* A 5xx refusal is permanent (RFC 5321): trying again would get the same. */
	notify_attempt_done(d, false,
	                    xstrfmt("mail through %s: %s%s%s%s", notify_request(d)->host, why,
	                            text ? ", the server said \"" : "", text ? text : "",
	                            text ? "\"" : ""),
	                    m->reply[0] != '5', 0);
	free(text);
}

static void send_email(struct notify_delivery *d)
{
	struct mail *m = mail_of(d);
	m->read_off = 0;
	m->reply[0] = '\0';
	m->errbuf[0] = '\0';
	notify_work(d, mail_work, mail_done);
}

/* The envelope: sender and recipients (t->to instead of the channel's list). */
static int envelope(const struct email_config *c, const struct notice_text *t,
                    struct channel_request *req, char **error)
{
	struct mail *m = xcalloc(1, sizeof(*m));
	req->data = m;
	req->data_free = mail_free;
	m->starttls = c->starttls;
	if (c->username) {
		m->username = xstrdup(c->username);
		const char *pw = getenv(c->password_env);
		if (!pw || !*pw) {
			*error = xstrfmt("the environment variable %s (passwordEnv) is not set",
			                 c->password_env);
			return -1;
		}
		m->password = xstrdup(pw);
	}
	m->mail_from = xstrfmt("<%s>", c->from);
	if (t->bad_to) {
		*error = xstrdup("the recipient is not a plain email address");
		return -1;
	}
	for (size_t i = 0; i < (t->to ? 1 : c->nto); i++) {
		char *rcpt = xstrfmt("<%s>", t->to ? t->to : c->to[i]);
		m->rcpt = curl_slist_append(m->rcpt, rcpt);
		free(rcpt);
	}
	return 0;
}

static int format_email_request(const struct channel *ch, const struct notice_text *t,
                                struct channel_request *req, char **error)
{
	static const char *const smtp_schemes[] = { "smtp", "smtps", NULL };
	const struct email_config *c = ch->config;
	req->url = xstrdup(c->url);
	req->host = url_host(req->url, smtp_schemes);
	if (!req->host) {
		*error = xstrdup("\"url\" is not an smtp:// or smtps:// URL");
		return -1;
	}
	if (envelope(c, t, req, error) < 0)
		return -1;
	/* Message-ID: random, and the sender's domain. */
	unsigned char r[12];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memset(r, 0, sizeof(r));
	struct strbuf id = STRBUF_INIT, mail = STRBUF_INIT;
	for (size_t i = 0; i < sizeof(r); i++)
		strbuf_addf(&id, "%02x", r[i]);
	strbuf_addf(&id, ".%lld%s", (long long)t->time_ms, strchr(c->from, '@'));
	format_email(t, ch, id.buf, &mail);
	strbuf_release(&id);
	req->body = strbuf_detach(&mail, &req->len);
	return 0;
}

const struct channel_type channel_email = {
	.name = "email",
	.what = "an email channel",
	.timeout_ms = 30000,
	.fields = email_tables,
	.check = check_email,
	.parse = parse_email,
	.release = release_email,
	.format = format_email_request,
	.send = send_email,
};
