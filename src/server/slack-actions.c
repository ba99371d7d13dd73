/*
 * slack-actions.c - approving from Slack: POST /slack/interactions, where
 * Slack sends what people click on the messages of Slack bot channels.
 *
 * A request is taken only when it is signed by the signing secret of one of
 * the server's interactive Slack channels, no more than 5 minutes old and
 * not seen before (notify/slack.h). Who clicked is the Slack user id of the
 * payload, which the people directory maps to a person; the decision is
 * theirs, made through control_apply() like every other decision, so the
 * engine's rules (who may approve, minApprovals, self-approval) apply as
 * they are: nothing is checked twice here. The button says which attempt it
 * decides; a button of an attempt that is over (decided, replaced, expired)
 * decides nothing.
 *
 * Afterwards the message is replaced (chat.update) to say who decided; a
 * refusal is answered to the person alone (chat.postEphemeral) with the
 * reason. Both go through the channel's notifier on the loop thread.
 */
#include "server/log.h"
#include "server/server-internal.h"

#include "core/people.h"
#include "notify/hub.h"
#include "notify/slack.h"
#include "runtime/control.h"
#include "runtime/history.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECISION_WAIT_MS 2500 /* Slack wants an answer within 3 s */

/* What to tell Slack afterwards, on the loop thread. */
struct followup {
	const char *channel; /* the steppy channel whose bot answers */
	const char *slack_channel, *user, *ts;
	const char *refusal;         /* an ephemeral answer, or NULL */
	const struct notice *notice; /* the message's new content, or NULL */
};

static void followup_done(void *arg, bool ok, const char *error)
{
	(void)arg;
	if (!ok)
		log_eventf("error", "slack.error", "slack: %s", error);
}

static void followup_send(struct server *srv, void *arg)
{
	struct followup *f = arg;
	const struct channel *c = notify_hub_find(srv->notify, f->channel);
	struct notifier *n = notify_hub_notifier(srv->notify);
	if (!c || !n || !f->slack_channel)
		return;
	if (f->refusal && f->user)
		notify_slack_ephemeral(n, c, f->slack_channel, f->user, f->refusal, followup_done,
		                       NULL);
	if (f->notice && f->ts)
		notify_slack_update(n, c, f->notice, f->slack_channel, f->ts, followup_done, NULL);
}

char *slack_decide_ref(const char *id, int stage, int step, int attempt)
{
	json_t *j = json_pack("{sssisisi}", "execution", id, "stage", stage, "step", step,
	                      "attempt", attempt);
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return s;
}

/* The new content of a decided request's message; every string owned. */
struct message {
	char *refusal;  /* nothing was decided, and why; else NULL and the rest is set */
	char *outcome;  /* "Approved by alice (in Slack)" */
	char *keep_ref; /* the buttons' value while more approvals are needed, else NULL */
	char *id, *plan, *environment, *stage, *step, *text, *subject, *url;
};

static void message_release(struct message *m)
{
	char *fields[] = { m->refusal, m->outcome, m->keep_ref, m->id,      m->plan, m->environment,
		           m->stage,   m->step,    m->text,     m->subject, m->url };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		free(fields[i]);
}

/* The button's reference: {"execution", "stage", "step", "attempt"}; false if it is not one. */
static bool parse_ref(const char *value, char *id, size_t idsize, int *stage, int *step,
                      int *attempt)
{
	json_t *j = value ? json_loads(value, JSON_REJECT_DUPLICATES, NULL) : NULL;
	const char *e = json_string_value(json_object_get(j, "execution"));
	json_t *s = json_object_get(j, "stage"), *t = json_object_get(j, "step"),
	       *a = json_object_get(j, "attempt");
	bool ok = e && *e && strlen(e) < idsize && json_is_integer(s) && json_is_integer(t) &&
	          json_is_integer(a) && json_integer_value(s) >= 0 &&
	          json_integer_value(s) < 100000 && json_integer_value(t) >= 0 &&
	          json_integer_value(t) < 100000 && json_integer_value(a) > 0 &&
	          json_integer_value(a) < 1000000;
	if (ok) {
		snprintf(id, idsize, "%s", e);
		*stage = (int)json_integer_value(s);
		*step = (int)json_integer_value(t);
		*attempt = (int)json_integer_value(a);
	}
	json_decref(j);
	return ok;
}

/* Why the attempt cannot be decided any more, or NULL if it can. */
static const char *closed(const struct loaded_exec *le, int stage, int step, int attempt)
{
	const struct step_state *ss = &le->state.steps[stage][step];
	if (ss->attempt != attempt)
		return "This request was replaced by a newer one for the same step.";
	if (ss->status == STEP_SUCCEEDED)
		return "This step has been approved already.";
	if (ss->status == STEP_REJECTED)
		return "This step has been rejected already.";
	if (ss->status == STEP_TIMED_OUT)
		return "This request expired: nobody decided in time.";
	if (ss->status == STEP_CANCELLED || le->state.status == EXEC_ABORTED)
		return "The release was aborted; there is nothing to decide.";
	if (ss->status != STEP_RUNNING || le->state.status != EXEC_RUNNING)
		return "This step does not wait for a decision.";
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* Makes the decision of a verified action; fills m. */
static void decide(struct request *rq, const struct slack_action *a, bool approve,
                   struct message *m)
{
	char **refusal = &m->refusal, **outcome = &m->outcome, **keep_ref = &m->keep_ref;
	struct server *srv = rq->srv;
	const struct person *who = people_by_slack(&server_config(srv)->people, a->user_id);
	char id[128];
	int stage, step, attempt;
	if (!who) {
		*refusal = xstrfmt("steppy does not know your Slack account (%s): ask whoever runs "
		                   "steppy to add \"slack: %s\" to your entry under \"people\". "
		                   "Nothing was recorded.",
		                   a->user_id, a->user_id);
		return;
	}
	if (!parse_ref(a->value, id, sizeof(id), &stage, &step, &attempt)) {
		*refusal = xstrdup("This button does not belong to a steppy approval request.");
		return;
	}
	struct strbuf err = STRBUF_INIT;
	struct store *st = server_store_get(srv, &err);
	struct exec_row row;
	struct loaded_exec le;
	bool have_row = false, loaded = false;
	if (st && store_get(st, id, &row, NULL) == 0) {
		have_row = true;
		loaded = !strcmp(row.id, id) && execution_load(st, row.id, &le, NULL) == 0;
	}
	if (!loaded) {
		*refusal = st ? xstrfmt("steppy has no release %s.", id)
		              : xstrdup("steppy cannot read its store right now; try again.");
		goto out;
	}
	if ((size_t)stage >= le.plan->nstages || (size_t)step >= le.plan->stages[stage].nsteps ||
	    !(le.plan->stages[stage].steps[step].type->flags & STEP_DECISION)) {
		*refusal = xstrdup("This button does not belong to a steppy approval request.");
		goto out;
	}
	const char *why = closed(&le, stage, step, attempt);
	if (why) {
		*refusal = xstrdup(why);
		goto out;
	}
	/* the engine decides whether they may (approver role, approvers, the rules) */
	json_t *data = json_pack("{sisisssbssss}", "stage", stage, "step", step, "by", who->name,
	                         "approverRole", (who->roles & ROLE_APPROVER) != 0, "via", "slack",
	                         "slackUser", a->user_id);
	int r =
	    control_apply(st, row.id, approve ? "approve" : "reject", data, DECISION_WAIT_MS, &err);
	if (r == SP_EBUSY) {
		*refusal = xstrfmt("Your decision is queued: %s.", err.buf);
		goto out;
	}
	if (r != CONTROL_DONE_BY_OWNER && r != CONTROL_DONE_HERE) {
		*refusal = xstrfmt("Refused: %s. Nothing was recorded.",
		                   err.len ? err.buf : "the decision could not be recorded");
		goto out;
	}
	/* What the message says now. */
	const struct plan_step *ps = &le.plan->stages[stage].steps[step];
	struct loaded_exec after;
	bool more = false;
	int have = 0, need = 0;
	if (approve && execution_load(st, row.id, &after, NULL) == 0) {
		const struct step_state *ss = &after.state.steps[stage][step];
		more = ss->status == STEP_RUNNING && ss->attempt == attempt;
		have = ss->napproved;
		need = approval_needed(ps);
		loaded_exec_release(&after);
	}
	if (!approve)
		*outcome = xstrfmt("Rejected by %s (in Slack)", who->name);
	else if (more)
		*outcome =
		    xstrfmt("Approved by %s (in Slack): %d of %d approvals, waiting for more",
		            who->name, have, need);
	else
		*outcome = xstrfmt("Approved by %s (in Slack)", who->name);
	if (more)
		*keep_ref = xstrdup(a->value);
	m->id = xstrdup(row.id);
	m->plan = dup_or_null(le.plan->name);
	m->environment = dup_or_null(le.plan->environment);
	m->stage = xstrdup(le.plan->stages[stage].name);
	m->step = xstrdup(ps->name);
	m->text = dup_or_null(approval_message(ps));
	m->subject = xstrfmt("Approval requested: %s", ps->name);
	/* the link of the message, when it is this server's approval page; else the release */
	size_t base = strlen(srv->url);
	if (a->link_url && !strncmp(a->link_url, srv->url, base) &&
	    !strncmp(a->link_url + base, "/approvals/", 11))
		m->url = xstrdup(a->link_url);
	else
		m->url = xstrfmt("%s/#/executions/%s", srv->url, row.id);
out:
	if (loaded)
		loaded_exec_release(&le);
	if (have_row)
		exec_row_release(&row);
	server_store_put(srv, st);
	strbuf_release(&err);
}

static void h_interactions(struct request *rq)
{
	struct server *srv = rq->srv;
	const char *ts = request_header(rq, "X-Slack-Request-Timestamp");
	const char *sig = request_header(rq, "X-Slack-Signature");
	int64_t now = wall_clock_ms() / 1000;
	const struct channel *matched = NULL;
	const char *why = "no Slack channel of this server takes interactions (none has a "
	                  "signing secret)";
	struct strbuf err = STRBUF_INIT;
	const struct serve_config *cfg = server_config(srv); /* one view: a reload may swap it */
	for (size_t i = 0; i < cfg->nchannels && !matched; i++) {
		const struct channel *c = cfg->channel_list[i];
		if (!channel_slack_interactive(c))
			continue;
		char *secret = channel_slack_signing_secret(c, &err);
		if (!secret) {
			why = "the signing secret cannot be read (see the server's log)";
			log_eventf("error", "slack.error", "slack: %s", err.buf);
			strbuf_reset(&err);
			continue;
		}
		if (slack_signature_check(secret, ts, rq->body ? rq->body : "", rq->len, sig, now,
		                          &why) == 0)
			matched = c;
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	strbuf_release(&err);
	if (!matched) {
		log_eventf("warning", "slack.refused", "slack: refused a request from %s: %s",
		           rq->address, why);
		respond_error(rq, 401, "bad-signature", "%s", why);
		return;
	}
	if (slack_replay_seen(srv->slack_replay, sig, strtoll(ts, NULL, 10), now)) {
		log_eventf("warning", "slack.refused", "slack: refused a replayed request from %s",
		           rq->address);
		respond_error(rq, 401, "replayed", "this request was received before");
		return;
	}
	struct slack_action a;
	struct strbuf perr = STRBUF_INIT;
	if (slack_action_parse(rq->body ? rq->body : "", rq->len, &a, &perr) < 0) {
		respond_error(rq, 400, "invalid-body", "%s", perr.buf);
		strbuf_release(&perr);
		slack_action_release(&a);
		return;
	}
	strbuf_release(&perr);
	bool approve = !strcmp(a.action_id, "steppy-approve");
	if (!approve && strcmp(a.action_id, "steppy-reject") != 0) {
		/* the link button, or something else: Slack only wants to hear 200 */
		respond_text(rq, 200, "text/plain", "", 0);
		slack_action_release(&a);
		return;
	}
	struct message m = { 0 };
	decide(rq, &a, approve, &m);
	struct notice notice = { .kind = "approval",
		                 .subject = m.subject,
		                 .message = m.text,
		                 .execution_id = m.id,
		                 .plan = m.plan,
		                 .environment = m.environment,
		                 .stage = m.stage,
		                 .step = m.step,
		                 .approval_url = m.url,
		                 .decide_ref = m.keep_ref,
		                 .outcome = m.outcome };
	struct followup f = { .channel = channel_name(matched),
		              .slack_channel = a.channel_id,
		              .user = a.user_id,
		              .ts = a.message_ts,
		              .refusal = m.refusal,
		              .notice = m.outcome ? &notice : NULL };
	if (srv->notify)
		server_call(srv, followup_send, &f);
	respond_text(rq, 200, "text/plain", "", 0);
	message_release(&m);
	slack_action_release(&a);
}

const struct route slack_routes[] = {
	{ "POST", "/slack/interactions", h_interactions, 0 },
	{ NULL, NULL, NULL, 0 },
};
