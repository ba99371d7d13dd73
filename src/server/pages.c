/*
 * pages.c - approval links and their pages.
 *
 * When a Human step starts, its attempt gets a link with a fresh secret
 * token (128 bits from getrandom); only the token's SHA-256 is stored. The
 * link goes to the step's notification channels.
 *
 * GET on a link only shows: the release, the step, its message, how many
 * approvals it needs and has, who is excluded, and a form. Mail scanners
 * and chat previews open links; they must never decide. The decision (and
 * signing in) is a POST of a form, accepted only with the form's token (an
 * HMAC, under a key that lives in the server's memory, of what the form is
 * for, the link's token and who is signed in) and, when the browser sends
 * one, an Origin of this server (request_same_origin()). Pages are served
 * with "Referrer-Policy: same-origin": the link's token never leaves for
 * another site, and the page's own posts carry its Origin.
 *
 * Who may decide is the engine's rule (engine_may_decide()): the page only
 * asks it what to offer (the buttons, or a sign-in form and why), and the
 * engine applies it again to the decision. A link decides its attempt once;
 * afterwards, and for expired or aborted steps, the page says what became
 * of it. A step that needs several approvals (minApprovals) keeps its
 * link open until it has them; each person approves once.
 */
#include "server/log.h"
#include "server/server-internal.h"

#include "runtime/control.h"
#include "runtime/history.h"
#include "server/auth.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DECISION_WAIT_MS 10000

/* ---- links ---------------------------------------------------------------------- */

void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/*
 * The token of a form of the page of link token: an HMAC of what the form
 * is for ("decide", "sign-in"), the link's token and who is signed in
 * (NULL: nobody). A form posted after signing in as someone else, or to
 * another link, or for another purpose, does not match.
 */
static void csrf_of(const struct server *srv, const char *purpose, const char *token,
                    const char *who, char out[65])
{
	struct strbuf msg = STRBUF_INIT;
	strbuf_addstr(&msg, purpose);
	strbuf_addch(&msg, '\0');
	strbuf_addstr(&msg, token);
	strbuf_addch(&msg, '\0');
	strbuf_addstr(&msg, who ? who : "");
	unsigned char mac[32];
	unsigned int len = sizeof(mac);
	HMAC(EVP_sha256(), srv->form_secret, (int)sizeof(srv->form_secret),
	     (const unsigned char *)msg.buf, msg.len, mac, &len);
	strbuf_release(&msg);
	hex_encode(mac, 32, out);
}

/* Whether the form's token (NULL: none) is the one csrf_of() makes. */
static bool csrf_ok(const struct server *srv, const char *given, const char *purpose,
                    const char *token, const char *who)
{
	char want[65];
	csrf_of(srv, purpose, token, who, want);
	return given && strlen(given) == 64 && CRYPTO_memcmp(given, want, 64) == 0;
}

void link_token_new(char token[33], unsigned char hash[32])
{
	unsigned char raw[16];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		abort(); /* no CSPRNG: no link can be safe */
	hex_encode(raw, sizeof(raw), token);
	explicit_bzero(raw, sizeof(raw));
	SHA256((const unsigned char *)token, strlen(token), hash);
}

void approval_notice_init(struct approval_notice *an, const char *id, const struct plan *plan,
                          int stage, int step, int attempt, const char *url)
{
	const struct plan_step *ps = &plan->stages[stage].steps[step];
	an->subject = xstrfmt("Approval requested: %s", ps->name);
	an->decide_ref = slack_decide_ref(id, stage, step, attempt); /* Slack's Approve/Reject */
	an->n = (struct notice){ .kind = "approval",
		                 .decide_ref = an->decide_ref,
		                 .subject = an->subject,
		                 .message = approval_message(ps),
		                 .execution_id = id,
		                 .plan = plan->name,
		                 .environment = plan->environment,
		                 .stage = plan->stages[stage].name,
		                 .step = ps->name,
		                 .approval_url = url };
}

void approval_notice_release(struct approval_notice *an)
{
	free(an->subject);
	free(an->decide_ref);
	memset(an, 0, sizeof(*an));
}

static void create_link(struct server *srv, const char *id, const struct plan *plan, int stage,
                        int step, int attempt)
{
	const struct plan_step *ps = &plan->stages[stage].steps[step];
	struct strbuf err = STRBUF_INIT;
	struct store *st = server_store_get(srv, &err);
	if (!st) {
		log_eventf("error", "link.error", "no approval link for %s: %s", id, err.buf);
		strbuf_release(&err);
		return;
	}
	if (store_approval_link_exists(st, id, stage, step, attempt)) {
		server_store_put(srv, st);
		strbuf_release(&err);
		return;
	}
	unsigned char hash[32];
	char token[33];
	link_token_new(token, hash);
	int r = store_approval_link_add(st, hash, id, stage, step, attempt, wall_clock_ms(), &err);
	server_store_put(srv, st);
	if (r < 0) {
		log_eventf("error", "link.error", "no approval link for %s: %s", id, err.buf);
		strbuf_release(&err);
		return;
	}
	strbuf_release(&err);
	char *url = xstrfmt("%s/approvals/%s", srv->url, token);
	explicit_bzero(token, sizeof(token));
	struct approval_notice an;
	approval_notice_init(&an, id, plan, stage, step, attempt, url);
	const struct notice n = an.n;
	/* Approvers with an email address get personal links through the email
	 * channels (personal.c); those channels then carry no general message. */
	json_t *personal = NULL;
	const char **skip = personal_links_send(srv, id, plan, stage, step, attempt, &n, &personal);
	size_t sent = server_notify_except(srv, doc_get(ps->node, "channels"), &n, stage, step,
	                                   attempt, skip);
	for (size_t i = 0; skip[i]; i++)
		sent++;
	free(skip);
	/* When and where people were asked, for the history and the dashboard. */
	json_t *to = json_array();
	const struct doc_node *chans = doc_get(ps->node, "channels");
	for (size_t i = 0; chans && i < chans->u.array.len; i++)
		json_array_append_new(to, json_string(chans->u.array.items[i]->u.string.s));
	if (!chans && sent)
		json_array_append_new(to, json_string("default channels"));
	if (!sent)
		json_array_append_new(to, json_string("server log"));
	json_t *data = json_pack("{ssso}", "notice", "approval requested", "channels", to);
	if (json_array_size(personal))
		json_object_set_new(data, "personalLinks", personal);
	else
		json_decref(personal);
	runtime_notice(srv->rt, id, stage, step, attempt, data);
	if (!sent) {
		/* No channels: the link goes to the server's own log, and the
		 * person who runs the server passes it on. */
		printf("approval requested: release %s, step \"%s\": %s\n", id, ps->name, url);
		fflush(stdout);
	}
	approval_notice_release(&an);
	free(url);
}

void approvals_on_events(struct server *srv, const char *id, const struct exec_state *state,
                         const struct event *events, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct event *e = &events[i];
		if (e->type != EV_STEP_STARTED)
			continue;
		const struct plan_step *ps = &state->plan->stages[e->stage].steps[e->step];
		if (ps->type->flags & STEP_DECISION)
			create_link(srv, id, state->plan, e->stage, e->step, e->attempt);
	}
}

/* ---- HTML ------------------------------------------------------------------------- */

void html_escape(struct strbuf *out, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<':
			strbuf_addstr(out, "&lt;");
			break;
		case '>':
			strbuf_addstr(out, "&gt;");
			break;
		case '&':
			strbuf_addstr(out, "&amp;");
			break;
		case '"':
			strbuf_addstr(out, "&quot;");
			break;
		case '\'':
			strbuf_addstr(out, "&#39;");
			break;
		default:
			strbuf_addch(out, *s);
		}
	}
}

void page_start(struct strbuf *out, const char *title)
{
	strbuf_addstr(out, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
	                   "<meta name=\"viewport\" content=\"width=device-width\"><title>");
	html_escape(out, title);
	strbuf_addstr(out,
	              "</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;"
	              "margin:2em auto;padding:0 1em;color:#1a1a1a}dt{font-weight:600}"
	              "dd{margin:0 0 .5em}.msg{white-space:pre-wrap;border-left:4px solid #888;"
	              "padding:.5em 1em;background:#f4f4f4}button{font-size:1em;padding:.5em "
	              "1.5em;margin-right:1em}.approve{background:#1f7a1f;color:#fff}"
	              ".reject{background:#a11;color:#fff}textarea{width:100%;min-height:4em}"
	              ".state{font-weight:600}.why{color:#7a4a00}form+form{margin-top:1.5em}</"
	              "style></head><body>");
}

void send_page(struct request *rq, unsigned status, struct strbuf *out)
{
	strbuf_addstr(out, "</body></html>\n");
	respond_text(rq, status, "text/html; charset=utf-8", out->buf, out->len);
	strbuf_release(out);
}

void simple_page(struct request *rq, unsigned status, const char *title, const char *text)
{
	struct strbuf out = STRBUF_INIT;
	page_start(&out, title);
	strbuf_addstr(&out, "<h1>");
	html_escape(&out, title);
	strbuf_addstr(&out, "</h1><p>");
	html_escape(&out, text);
	strbuf_addstr(&out, "</p>");
	send_page(rq, status, &out);
}

/* ---- the link's page ----------------------------------------------------------------- */

struct link_view {
	struct approval_link link;
	struct exec_row row;
	struct loaded_exec le;
	const struct plan_step *ps;
	const struct step_state *ss;
};

/* Finds the link of rq->params[0]; answers 404 and returns false if none. */
static bool load_link(struct request *rq, struct store *st, struct link_view *v)
{
	memset(v, 0, sizeof(*v));
	const char *token = rq->params[0];
	unsigned char hash[32];
	SHA256((const unsigned char *)token, strlen(token), hash);
	if (strlen(token) != 32 || store_approval_link_find(st, hash, &v->link, NULL) < 0) {
		simple_page(rq, 404, "Unknown approval link",
		            "This link is not known here. It may be mistyped, or belong to another "
		            "steppy server.");
		return false;
	}
	bool have_row = store_get(st, v->link.execution_id, &v->row, NULL) == 0;
	if (!have_row || execution_load(st, v->row.id, &v->le, NULL) < 0) {
		simple_page(rq, 503, "Unavailable", "The release cannot be read right now.");
		if (have_row)
			exec_row_release(&v->row);
		free(v->link.execution_id);
		return false;
	}
	v->ps = &v->le.plan->stages[v->link.stage].steps[v->link.step];
	v->ss = &v->le.state.steps[v->link.stage][v->link.step];
	return true;
}

static void link_view_release(struct link_view *v)
{
	loaded_exec_release(&v->le);
	exec_row_release(&v->row);
	free(v->link.execution_id);
}

const char *link_closed_reason(const struct exec_state *state, const struct step_state *ss,
                               int attempt)
{
	if (ss->attempt != attempt)
		return "This request was replaced by a newer one for the same step.";
	if (ss->status == STEP_SUCCEEDED)
		return "This step has been approved.";
	if (ss->status == STEP_REJECTED)
		return "This step has been rejected.";
	if (ss->status == STEP_TIMED_OUT)
		return "This request expired: nobody decided in time.";
	if (ss->status == STEP_CANCELLED || state->status == EXEC_ABORTED)
		return "The release was aborted; there is nothing to decide.";
	if (ss->status != STEP_RUNNING || state->status != EXEC_RUNNING)
		return "This step does not wait for a decision.";
	return NULL;
}

/* Why the link cannot decide any more, or NULL if it can. */
static const char *closed_reason(const struct link_view *v)
{
	return link_closed_reason(&v->le.state, v->ss, v->link.attempt);
}

/* The rule's verdict on d deciding the link's step (approve or reject); why may be NULL. */
static enum approval_verdict verdict(const struct link_view *v, const struct approval_decider *d,
                                     bool approve, struct strbuf *why)
{
	return engine_may_decide(&v->le.state, v->link.stage, v->link.step, d, approve, why);
}

/* "Approvals: 1 of 2 approvals given (alice)" and, with self-approval off, who is excluded. */
static void add_approvals(struct strbuf *out, const struct link_view *v,
                          const struct approval_rule *rule)
{
	int need = rule->min_approvals;
	int given = v->ss->attempt == v->link.attempt ? v->ss->napproved : 0;
	strbuf_addf(out, "<dt>Approvals</dt><dd id=\"needed\">%d of %d approval%s given", given,
	            need, need == 1 ? "" : "s");
	for (int i = 0; i < given; i++) {
		strbuf_addstr(out, i ? ", " : " (");
		html_escape(out, *v->ss->approved_by[i] ? v->ss->approved_by[i]
		                                        : "someone with the link");
	}
	strbuf_addstr(out, given ? ")</dd>" : "</dd>");
	if (!rule->self_approval) {
		const char *starter = v->le.state.started_by;
		strbuf_addstr(out, "<dt>Excluded</dt><dd id=\"excluded\">");
		if (starter && *starter) {
			html_escape(out, starter);
			strbuf_addstr(out, ", who started the release, may reject but not approve");
		} else {
			strbuf_addstr(out, "whoever started the release may not approve it");
		}
		strbuf_addstr(out, "</dd>");
	}
}

static void add_sign_in(struct strbuf *out, const struct request *rq, const char *label)
{
	char csrf[65];
	csrf_of(rq->srv, "sign-in", rq->params[0], NULL, csrf);
	strbuf_addstr(out, "<form method=\"post\" action=\"/approvals/");
	strbuf_addstr(out, rq->params[0]);
	strbuf_addstr(out, "/sign-in\"><input type=\"hidden\" name=\"csrf\" value=\"");
	strbuf_addstr(out, csrf);
	strbuf_addstr(out, "\"><label>");
	html_escape(out, label);
	strbuf_addstr(out, " <input type=\"password\" name=\"token\" autocomplete=\"off\" "
	                   "aria-label=\"token\"></label> <button type=\"submit\">Sign in"
	                   "</button></form>");
}

/*
 * What the visitor may do on an open link, as the engine's rule says: the
 * buttons they may use, or why not and how to sign in. A visitor nobody
 * knows must sign in when an approval needs a name (minApprovals > 1,
 * allowSelfApproval false, approvers), even where the rule would let them
 * reject anonymously: one way in, and every decision names its maker.
 */
static void add_choices(struct strbuf *out, struct request *rq, const struct link_view *v)
{
	struct approval_decider d;
	request_decider(rq, &d);
	struct strbuf why_a = STRBUF_INIT, why_r = STRBUF_INIT;
	enum approval_verdict va = verdict(v, &d, true, &why_a);
	enum approval_verdict vr = verdict(v, &d, false, &why_r);
	bool tokens = server_config(rq->srv)->ntokens > 0;
	if (d.by) {
		strbuf_addstr(out, "<p>Signed in as <strong id=\"who\">");
		html_escape(out, d.by);
		strbuf_addstr(out, "</strong>.</p>");
	}
	if (!d.by && (va == APPROVAL_NO_NAME || vr != APPROVAL_MAY)) {
		strbuf_addstr(out, "<p class=\"state\" id=\"state\">");
		html_escape(out, va != APPROVAL_MAY ? why_a.buf : why_r.buf);
		strbuf_addstr(out, "</p>");
		char *back = xstrfmt("/approvals/%s", rq->params[0]);
		auth_sign_in_link(rq, out, back);
		free(back);
		if (tokens)
			add_sign_in(out, rq, "Your steppy token");
		else if (!server_config(rq->srv)->oidc.issuer)
			strbuf_addstr(out,
			              "<p>This server has no tokens, so nobody can sign in here: "
			              "decide with <code>steppy approve --by NAME</code> on its "
			              "store.</p>");
	} else if (va == APPROVAL_MAY || vr == APPROVAL_MAY) {
		char csrf[65];
		csrf_of(rq->srv, "decide", rq->params[0], d.by, csrf);
		strbuf_addstr(out, "<p class=\"state\" id=\"state\">Waiting for a decision.</p>");
		if (va != APPROVAL_MAY) {
			strbuf_addstr(out, "<p class=\"why\" id=\"why\">");
			html_escape(out, why_a.buf);
			strbuf_addstr(out, ".</p>");
		}
		strbuf_addstr(out, "<form method=\"post\"><input type=\"hidden\" name=\"csrf\" "
		                   "value=\"");
		strbuf_addstr(out, csrf);
		strbuf_addstr(out, "\"><p><label>Comment<br><textarea name=\"comment\" "
		                   "maxlength=\"2000\"></textarea></label></p>");
		if (va == APPROVAL_MAY)
			strbuf_addstr(out, "<button class=\"approve\" name=\"decision\" "
			                   "value=\"approve\" type=\"submit\">Approve</button>");
		strbuf_addstr(out, "<button class=\"reject\" name=\"decision\" value=\"reject\" "
		                   "type=\"submit\">Reject</button></form>");
		if (d.by)
			add_sign_in(out, rq, "Not you? Sign in as someone else:");
	} else {
		strbuf_addstr(out, "<p class=\"state\" id=\"state\">");
		html_escape(out, vr != APPROVAL_MAY ? why_r.buf : why_a.buf);
		if (va == APPROVAL_NO_ROLE || vr == APPROVAL_NO_ROLE) {
			struct strbuf has = STRBUF_INIT;
			role_names(rq->roles, ", ", &has);
			if (!has.len)
				strbuf_addstr(&has, "no role");
			strbuf_addstr(out, "; ");
			html_escape(out, d.by);
			strbuf_addstr(out, " has ");
			html_escape(out, has.buf);
			strbuf_release(&has);
		}
		strbuf_addstr(out, ".</p>");
		if (tokens)
			add_sign_in(out, rq, "Sign in as someone else:");
	}
	strbuf_release(&why_a);
	strbuf_release(&why_r);
}

void page_release_facts(struct strbuf *out, const struct exec_row *row, const char *stage,
                        const char *step)
{
	strbuf_addstr(out, "<dt>Release</dt><dd>");
	html_escape(out, row->id);
	if (row->plan_name) {
		strbuf_addstr(out, " &mdash; ");
		html_escape(out, row->plan_name);
	}
	if (row->environment) {
		strbuf_addstr(out, " (");
		html_escape(out, row->environment);
		strbuf_addstr(out, ")");
	}
	strbuf_addstr(out, "</dd><dt>Started by</dt><dd>");
	html_escape(out, row->started_by ? row->started_by : "?");
	strbuf_addstr(out, "</dd><dt>Step</dt><dd>");
	html_escape(out, stage);
	strbuf_addstr(out, " / ");
	html_escape(out, step);
	strbuf_addstr(out, "</dd>");
}

static void h_link_get(struct request *rq)
{
	struct strbuf err = STRBUF_INIT;
	struct store *st = server_store_get(rq->srv, &err);
	strbuf_release(&err);
	struct link_view v;
	if (!st) {
		simple_page(rq, 503, "Unavailable", "The store cannot be read right now.");
		return;
	}
	if (!load_link(rq, st, &v)) {
		server_store_put(rq->srv, st);
		return;
	}
	server_store_put(rq->srv, st);
	struct strbuf out = STRBUF_INIT;
	page_start(&out, "Approval requested");
	strbuf_addstr(&out, "<h1>Approval requested</h1><dl>");
	page_release_facts(&out, &v.row, v.le.plan->stages[v.link.stage].name, v.ps->name);
	const struct approval_rule *rule = approval_rule_of(v.ps);
	if (rule->napprovers) {
		strbuf_addstr(&out, "<dt>Approvers</dt><dd>");
		for (size_t i = 0; i < rule->napprovers; i++) {
			if (i)
				strbuf_addstr(&out, ", ");
			html_escape(&out, rule->approvers[i]);
		}
		strbuf_addstr(&out, "</dd>");
	}
	add_approvals(&out, &v, rule);
	strbuf_addstr(&out, "</dl><p class=\"msg\">");
	html_escape(&out, rule->message);
	strbuf_addstr(&out, "</p>");
	const char *closed = closed_reason(&v);
	if (closed) {
		strbuf_addstr(&out, "<p class=\"state\" id=\"state\">");
		html_escape(&out, closed);
		strbuf_addstr(&out, "</p>");
	} else {
		add_choices(&out, rq, &v);
	}
	link_view_release(&v);
	send_page(rq, 200, &out);
}

/* The value of name in an application/x-www-form-urlencoded body (decoded;
 * caller frees), or NULL. */
char *form_value(const char *body, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = body; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > n && !strncmp(p, name, n) && p[n] == '=') {
			struct strbuf v = STRBUF_INIT;
			for (size_t i = n + 1; i < len; i++) {
				char c = p[i];
				if (c == '+')
					c = ' ';
				else if (c == '%' && i + 2 < len + 0 + 1 && p[i + 1] && p[i + 2]) {
					char h[3] = { p[i + 1], p[i + 2], 0 };
					c = (char)strtol(h, NULL, 16);
					i += 2;
				}
				strbuf_addch(&v, c);
			}
			return strbuf_detach(&v, NULL);
		}
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

static void h_link_post(struct request *rq)
{
	char *csrf = rq->body ? form_value(rq->body, "csrf") : NULL;
	char *decision = rq->body ? form_value(rq->body, "decision") : NULL;
	char *comment = rq->body ? form_value(rq->body, "comment") : NULL;
	struct approval_decider d;
	request_decider(rq, &d);
	struct link_view v;
	struct store *st = NULL;
	if (!request_same_origin(rq) || !csrf_ok(rq->srv, csrf, "decide", rq->params[0], d.by)) {
		simple_page(rq, 403, "Refused",
		            "This decision did not come from the approval page of this server "
		            "(missing or wrong form token, or another origin), or you signed in "
		            "as someone else since the page was shown. Open the link and decide "
		            "there.");
	} else if (!decision ||
	           (strcmp(decision, "approve") != 0 && strcmp(decision, "reject") != 0)) {
		simple_page(rq, 400, "Bad request", "The decision must be approve or reject.");
	} else if (!(st = server_store_get(rq->srv, NULL))) {
		simple_page(rq, 503, "Unavailable", "The store cannot be read right now.");
	} else if (load_link(rq, st, &v)) {
		const char *closed = closed_reason(&v);
		bool approve = !strcmp(decision, "approve");
		struct strbuf why = STRBUF_INIT;
		enum approval_verdict verd = closed ? APPROVAL_MAY : verdict(&v, &d, approve, &why);
		if (closed) {
			simple_page(rq, 409, "Already decided", closed);
		} else if (verd == APPROVAL_NO_ROLE || verd == APPROVAL_NO_NAME ||
		           verd == APPROVAL_NOT_LISTED) {
			simple_page(rq, 403, "Not allowed", why.buf);
		} else if (verd != APPROVAL_MAY) {
			simple_page(rq, 409, "Refused", why.buf);
		} else {
			/* The engine applies the same rule again to the decision. */
			json_t *data = decision_data(rq, v.link.stage, v.link.step, "link");
			if (comment && *comment)
				json_object_set_new(data, "comment", json_string(comment));
			struct strbuf err = STRBUF_INIT;
			int r = control_apply(st, v.row.id, decision, data, DECISION_WAIT_MS, &err);
			if (r == CONTROL_DONE_BY_OWNER || r == CONTROL_DONE_HERE || r == SP_EBUSY) {
				rq->location = xstrfmt("/approvals/%s", rq->params[0]);
				respond_text(rq, 303, "text/plain", "decided\n", 8);
			} else {
				simple_page(rq, 409, "Refused", err.buf);
			}
			strbuf_release(&err);
		}
		strbuf_release(&why);
		link_view_release(&v);
	}
	server_store_put(rq->srv, st);
	free(csrf);
	free(decision);
	free(comment);
}

static void h_link_sign_in(struct request *rq)
{
	char *csrf = rq->body ? form_value(rq->body, "csrf") : NULL;
	char *token = rq->body ? form_value(rq->body, "token") : NULL;
	const struct api_token *t = token ? server_find_token(rq->srv, token) : NULL;
	if (!request_same_origin(rq) || !csrf_ok(rq->srv, csrf, "sign-in", rq->params[0], NULL)) {
		simple_page(rq, 403, "Sign-in refused",
		            "This sign-in did not come from the approval page of this server. Open "
		            "the link and sign in there.");
	} else if (!t) {
		simple_page(rq, 403, "Sign-in refused", "That token is not known here.");
	} else {
		rq->set_cookie = session_cookie(rq->srv, token);
		rq->location = xstrfmt("/approvals/%s", rq->params[0]);
		respond_text(rq, 303, "text/plain", "signed in\n", 10);
	}
	free(csrf);
	free(token);
}

const struct route page_routes[] = {
	{ "GET", "/approvals/{}", h_link_get, 0 },
	{ "POST", "/approvals/{}", h_link_post, 0 },
	{ "POST", "/approvals/{}/sign-in", h_link_sign_in, 0 },
	{ NULL, NULL, NULL, 0 },
};
