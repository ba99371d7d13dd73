/*
 * personal.c - personal approval links: one link per approver of a Human
 * step, bound to that person and good for one decision.
 *
 * When a Human step with approvers starts, every person its approvers name
 * (a name of the people directory, or the members of a "group:NAME") gets
 * a link of their own: a 128-bit token from the kernel's CSPRNG, only its
 * SHA-256 stored (the personal_links table), mailed to the person's email
 * address through the step's email channels. Channels that post to a room
 * (Slack, Teams, webhooks) keep the general link, which needs a sign-in
 * when the step has approvers.
 *
 * The link is the person's credential for that one decision: its page
 * (GET, which never changes anything: mail scanners open links) shows the
 * release and a form; the POST of that form, with the page's CSRF token,
 * decides as that person (via "personal-link"), and the link is used up.
 * A decision the engine refuses (the starter approving their own release,
 * someone who already approved) leaves the link unused.
 */
#include "server/log.h"
#include "server/server-internal.h"

#include "core/people.h"
#include "notify/hub.h"
#include "plan/step-type.h"
#include "runtime/control.h"
#include "runtime/history.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECISION_WAIT_MS 10000
#define MAX_PEOPLE       APPROVAL_MAX * 2 /* personal links per step */

/* ---- sending --------------------------------------------------------------------- */

/* Adds who to people unless there already (by name), or without the approver role. */
static void add_person(const struct person **people, size_t *n, const struct person *who)
{
	if (!(who->roles & ROLE_APPROVER))
		return; /* a link that could never decide helps nobody */
	for (size_t i = 0; i < *n; i++)
		if (people[i] == who || !strcmp(people[i]->name, who->name))
			return;
	if (*n < MAX_PEOPLE)
		people[(*n)++] = who;
}

/* The people a step's approvers (its approval rule) name, through the directory. */
static size_t approvers_of(const struct people *dir, const struct approval_rule *rule,
                           const struct person **out)
{
	size_t n = 0;
	for (size_t i = 0; i < rule->napprovers; i++) {
		const char *a = rule->approvers[i];
		size_t plen = strlen(PEOPLE_GROUP_PREFIX);
		if (!strncmp(a, PEOPLE_GROUP_PREFIX, plen)) {
			for (size_t k = 0; dir && k < dir->n; k++)
				if (person_in_group(&dir->list[k], a + plen))
					add_person(out, &n, &dir->list[k]);
		} else {
			const struct person *p = people_find(dir, a);
			if (p)
				add_person(out, &n, p);
		}
	}
	return n;
}

const char **personal_links_send(struct server *srv, const char *id, const struct plan *plan,
                                 int stage, int step, int attempt, const struct notice *general,
                                 json_t **ret_people)
{
	*ret_people = json_array();
	const struct plan_step *ps = &plan->stages[stage].steps[step];
	const struct approval_rule *rule = approval_rule_of(ps);
	const struct person *people[MAX_PEOPLE];
	size_t npeople = rule ? approvers_of(&server_config(srv)->people, rule, people) : 0;
	/* the email channels among the step's (or the default) channels */
	const struct doc_node *chans = doc_get(ps->node, "channels");
	size_t ndefaults = 0;
	const char *const *defaults = notify_hub_defaults(srv->notify, &ndefaults);
	size_t nchans = chans ? chans->u.array.len : ndefaults;
	const char **email = xcalloc(nchans + 1, sizeof(*email));
	size_t nemail = 0;
	for (size_t i = 0; i < nchans; i++) {
		const char *name = chans ? chans->u.array.items[i]->u.string.s : defaults[i];
		const char *type = notify_hub_type(srv->notify, name);
		if (type && !strcmp(type, "email"))
			email[nemail++] = name;
	}
	bool any = false;
	struct store *st = npeople && nemail ? server_store_get(srv, NULL) : NULL;
	for (size_t i = 0; st && i < npeople; i++) {
		if (!people[i]->email)
			continue;
		unsigned char hash[32];
		char token[33];
		link_token_new(token, hash);
		struct strbuf err = STRBUF_INIT;
		if (store_personal_link_add(st, hash, id, stage, step, attempt, people[i]->name,
		                            wall_clock_ms(), &err) < 0) {
			log_eventf("error", "link.error", "no personal link for %s: %s",
			           people[i]->name, err.buf);
			strbuf_release(&err);
			continue;
		}
		strbuf_release(&err);
		char *url = xstrfmt("%s/approvals/personal/%s", srv->url, token);
		OPENSSL_cleanse(token, sizeof(token));
		struct notice n = *general;
		n.approval_url = url;
		n.to = people[i]->email;
		for (size_t k = 0; k < nemail; k++)
			server_notify_one(srv, email[k], &n, stage, step, attempt);
		/* Direct messages (a person's slack id) would be sent here too, by
		 * the Slack channel, with the same personal url. */
		free(url);
		json_array_append_new(*ret_people, json_string(people[i]->name));
		any = true;
	}
	server_store_put(srv, st);
	if (!any)
		email[0] = NULL; /* nobody had an address: the general link goes everywhere */
	return email;
}

/* ---- the page ---------------------------------------------------------------------- */

struct personal_view {
	struct personal_link pl;
	unsigned char hash[32];
	struct exec_row row;
	struct loaded_exec le;
	const struct plan_step *ps;
	const struct step_state *ss;
};

static void csrf_of(const struct server *srv, const char *token, char out[65])
{
	unsigned char mac[32];
	unsigned int len = sizeof(mac);
	char *text = xstrfmt("personal:%s", token);
	HMAC(EVP_sha256(), srv->form_secret, (int)sizeof(srv->form_secret),
	     (const unsigned char *)text, strlen(text), mac, &len);
	free(text);
	hex_encode(mac, 32, out);
}

/* Finds the link of rq->params[0]; answers and returns false if there is none. */
static bool load(struct request *rq, struct store *st, struct personal_view *v)
{
	memset(v, 0, sizeof(*v));
	const char *token = rq->params[0];
	SHA256((const unsigned char *)token, strlen(token), v->hash);
	if (strlen(token) != 32 || store_personal_link_find(st, v->hash, &v->pl, NULL) < 0) {
		simple_page(rq, 404, "Unknown approval link",
		            "This link is not known here. It may be mistyped, or belong to another "
		            "steppy server.");
		return false;
	}
	bool have_row = store_get(st, v->pl.link.execution_id, &v->row, NULL) == 0;
	if (!have_row || execution_load(st, v->row.id, &v->le, NULL) < 0) {
		simple_page(rq, 503, "Unavailable", "The release cannot be read right now.");
		if (have_row)
			exec_row_release(&v->row);
		personal_link_release(&v->pl);
		return false;
	}
	v->ps = &v->le.plan->stages[v->pl.link.stage].steps[v->pl.link.step];
	v->ss = &v->le.state.steps[v->pl.link.stage][v->pl.link.step];
	return true;
}

static void release_view(struct personal_view *v)
{
	loaded_exec_release(&v->le);
	exec_row_release(&v->row);
	personal_link_release(&v->pl);
}

/* Why the link cannot decide, or NULL. */
static const char *closed(const struct personal_view *v)
{
	if (v->pl.used_ms)
		return "This personal link has been used: it decides once.";
	const char *why = link_closed_reason(&v->le.state, v->ss, v->pl.link.attempt);
	if (why)
		return why;
	for (int i = 0; i < v->ss->napproved; i++)
		if (approval_same_person(v->ss->approved_by[i], v->pl.person))
			return "You have approved this step already.";
	return NULL;
}

/* The engine's rule on the link's person deciding now (their role is
 * checked when the decision is applied): APPROVAL_NOT_LISTED once the step's
 * approvers no longer name them. */
static enum approval_verdict still_listed(const struct personal_view *v,
                                          const struct people *people, const char *decision)
{
	struct approval_decider d = { .by = v->pl.person, .approver_role = -1, .people = people };
	return engine_may_decide(&v->le.state, v->pl.link.stage, v->pl.link.step, &d,
	                         !strcmp(decision, "approve"), NULL);
}

static void h_get(struct request *rq)
{
	struct store *st = server_store_get(rq->srv, NULL);
	struct personal_view v;
	if (!st) {
		simple_page(rq, 503, "Unavailable", "The store cannot be read right now.");
		return;
	}
	bool found = load(rq, st, &v);
	server_store_put(rq->srv, st);
	if (!found)
		return;
	struct strbuf out = STRBUF_INIT;
	page_start(&out, "Approval requested");
	strbuf_addstr(&out, "<h1>Approval requested</h1><p id=\"who\">Your personal link, ");
	html_escape(&out, v.pl.person);
	strbuf_addstr(&out, ": it decides once, in your name.</p><dl>");
	page_release_facts(&out, &v.row, v.le.plan->stages[v.pl.link.stage].name, v.ps->name);
	strbuf_addstr(&out, "</dl><p class=\"msg\">");
	html_escape(&out, approval_message(v.ps));
	strbuf_addstr(&out, "</p>");
	const char *why = closed(&v);
	if (why) {
		strbuf_addstr(&out, "<p class=\"state\" id=\"state\">");
		html_escape(&out, why);
		strbuf_addstr(&out, "</p>");
	} else {
		char csrf[65];
		csrf_of(rq->srv, rq->params[0], csrf);
		strbuf_addstr(&out, "<p class=\"state\" id=\"state\">Waiting for a decision.</p>"
		                    "<form method=\"post\"><input type=\"hidden\" name=\"csrf\" "
		                    "value=\"");
		strbuf_addstr(&out, csrf);
		strbuf_addstr(&out,
		              "\"><p><label>Comment<br><textarea name=\"comment\" "
		              "maxlength=\"2000\"></textarea></label></p><button class=\"approve\" "
		              "name=\"decision\" value=\"approve\" type=\"submit\">Approve</button>"
		              "<button class=\"reject\" name=\"decision\" value=\"reject\" "
		              "type=\"submit\">Reject</button></form>");
	}
	release_view(&v);
	send_page(rq, 200, &out);
}

/* Decides as the link's person; the link is used unless the decision is refused. */
static void decide(struct request *rq, struct store *st, struct personal_view *v,
                   const char *decision, const char *comment)
{
	int64_t now = wall_clock_ms();
	int used = store_personal_link_use(st, v->hash, true, now, NULL);
	if (used <= 0) {
		simple_page(rq, used == 0 ? 409 : 503, used == 0 ? "Already used" : "Unavailable",
		            used == 0 ? "This personal link has been used: it decides once."
		                      : "The store cannot be written right now.");
		return;
	}
	const struct person *who = people_find(&server_config(rq->srv)->people, v->pl.person);
	json_t *data =
	    json_pack("{sisissssss}", "stage", v->pl.link.stage, "step", v->pl.link.step, "by",
	              v->pl.person, "via", "personal-link", "address", rq->address);
	if (who)
		json_object_set_new(data, "approverRole",
		                    json_boolean((who->roles & ROLE_APPROVER) != 0));
	if (comment && *comment)
		json_object_set_new(data, "comment", json_string(comment));
	struct strbuf err = STRBUF_INIT;
	int r = control_apply(st, v->row.id, decision, data, DECISION_WAIT_MS, &err);
	if (r == CONTROL_DONE_BY_OWNER || r == CONTROL_DONE_HERE || r == SP_EBUSY) {
		rq->location = xstrfmt("/approvals/personal/%s", rq->params[0]);
		respond_text(rq, 303, "text/plain", "decided\n", 8);
	} else {
		store_personal_link_use(st, v->hash, false, now, NULL);
		simple_page(rq, 409, "Refused", err.buf);
	}
	strbuf_release(&err);
}

static void h_post(struct request *rq)
{
	char *csrf = rq->body ? form_value(rq->body, "csrf") : NULL;
	char *decision = rq->body ? form_value(rq->body, "decision") : NULL;
	char *comment = rq->body ? form_value(rq->body, "comment") : NULL;
	char want[65];
	csrf_of(rq->srv, rq->params[0], want);
	struct store *st = NULL;
	struct personal_view v;
	if (!request_same_origin(rq) || !csrf || strlen(csrf) != 64 ||
	    CRYPTO_memcmp(csrf, want, 64) != 0) {
		simple_page(
		    rq, 403, "Refused",
		    "This decision did not come from the page of this link (missing or "
		    "wrong form token, or another origin). Open the link and decide there.");
	} else if (!decision ||
	           (strcmp(decision, "approve") != 0 && strcmp(decision, "reject") != 0)) {
		simple_page(rq, 400, "Bad request", "The decision must be approve or reject.");
	} else if (!(st = server_store_get(rq->srv, NULL))) {
		simple_page(rq, 503, "Unavailable", "The store cannot be read right now.");
	} else if (load(rq, st, &v)) {
		const char *why = closed(&v);
		if (why)
			simple_page(rq, 409, "Already decided", why);
		else if (still_listed(&v, &server_config(rq->srv)->people, decision) ==
		         APPROVAL_NOT_LISTED)
			simple_page(rq, 403, "Not an approver",
			            "You are no longer among the approvers of this step.");
		else
			decide(rq, st, &v, decision, comment);
		release_view(&v);
	}
	server_store_put(rq->srv, st);
	free(csrf);
	free(decision);
	free(comment);
}

const struct route personal_routes[] = {
	{ "GET", "/approvals/personal/{}", h_get, 0 },
	{ "POST", "/approvals/personal/{}", h_post, 0 },
	{ NULL, NULL, NULL, 0 },
};
