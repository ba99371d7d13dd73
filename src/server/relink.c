/*
 * relink.c - a new approval link for a waiting Human step:
 * POST /api/v1/executions/{id}/steps/{stage}/{step}/link (approvers).
 *
 * A link that reached nobody (a channel that was down, a mail that
 * bounced) leaves a release waiting for a decision nobody can make from a
 * link. An approver asks for a fresh one: a new token (128 bits from
 * getrandom, only its SHA-256 stored) replaces the attempt's links, so the
 * old one opens nothing any more; the request goes to the step's channels
 * again; the history records who asked and where it went (a Notice,
 * "approval link re-issued", never the token); and the answer gives the
 * link to the approver, who may pass it on. The work runs on the loop
 * thread (notifications and Notices are the runtime's); only a release this
 * server runs can have its link re-issued.
 */
#include "server/server-internal.h"

#include "notify/hub.h"
#include "runtime/history.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct relink_job {
	const char *id, *by;
	int stage, step;
	/* results */
	unsigned status; /* HTTP status */
	struct strbuf err;
	char *url;
	int attempt;
	json_t *channels; /* where the request went */
};

/* Where an approval request of step ps goes, as the history names it. */
static json_t *destinations(struct server *srv, const struct plan_step *ps)
{
	json_t *to = json_array();
	const struct doc_node *chans = doc_get(ps->node, "channels");
	for (size_t i = 0; chans && i < chans->u.array.len; i++)
		json_array_append_new(to, json_string(chans->u.array.items[i]->u.string.s));
	size_t n = 0;
	if (!chans && srv->notify)
		notify_hub_defaults(srv->notify, &n);
	if (!chans && n)
		json_array_append_new(to, json_string("default channels"));
	if (!json_array_size(to))
		json_array_append_new(to, json_string("server log"));
	return to;
}

static void do_relink(struct server *srv, void *arg)
{
	struct relink_job *j = arg;
	struct store *st = server_store_get(srv, &j->err);
	struct exec_row row;
	struct loaded_exec le;
	bool have_row = false, loaded = false;
	j->status = 503;
	if (!st)
		return;
	if (store_get(st, j->id, &row, NULL) == 0) {
		have_row = true;
		loaded = !strcmp(row.id, j->id) && execution_load(st, row.id, &le, &j->err) == 0;
	}
	if (!loaded) {
		j->status = 404;
		strbuf_reset(&j->err);
		strbuf_addf(&j->err, "no execution %s", j->id);
		goto out;
	}
	if ((size_t)j->stage >= le.plan->nstages ||
	    (size_t)j->step >= le.plan->stages[j->stage].nsteps) {
		j->status = 404;
		strbuf_addf(&j->err, "execution %s has no step %d/%d", row.id, j->stage, j->step);
		goto out;
	}
	const struct plan_step *ps = &le.plan->stages[j->stage].steps[j->step];
	const struct step_state *ss = &le.state.steps[j->stage][j->step];
	j->status = 409;
	if (!(ps->type->flags & STEP_DECISION)) {
		strbuf_addf(&j->err, "step \"%s\" is not a Human step", ps->name);
		goto out;
	}
	if (ss->status != STEP_RUNNING || le.state.status != EXEC_RUNNING) {
		strbuf_addf(&j->err, "step \"%s\" does not wait for a decision", ps->name);
		goto out;
	}
	j->attempt = ss->attempt;
	j->channels = destinations(srv, ps);
	/* Recorded first: it fails when another process runs the release, and then nothing
	 * has changed. */
	int r = runtime_notice(srv->rt, row.id, j->stage, j->step, j->attempt,
	                       json_pack("{sssssO}", "notice", "approval link re-issued", "by",
	                                 j->by, "channels", j->channels));
	if (r == SP_ENOENT) {
		strbuf_addstr(&j->err,
		              "another steppy process runs this release: re-issue the link "
		              "through the node that runs it (steppy link --server with that "
		              "node's own address, not the balancer's; its log has the "
		              "release.started or releases.taken-over line of the release)");
		goto out;
	}
	if (r < 0) {
		strbuf_addstr(&j->err, "the release has ended");
		goto out;
	}
	unsigned char hash[32];
	char token[33];
	link_token_new(token, hash);
	j->status = 503;
	if (store_approval_link_replace(st, hash, row.id, j->stage, j->step, j->attempt,
	                                wall_clock_ms(), &j->err) < 0)
		goto out;
	j->url = xstrfmt("%s/approvals/%s", srv->url, token);
	explicit_bzero(token, sizeof(token));
	struct approval_notice an;
	approval_notice_init(&an, row.id, le.plan, j->stage, j->step, j->attempt, j->url);
	size_t sent =
	    server_notify(srv, doc_get(ps->node, "channels"), &an.n, j->stage, j->step, j->attempt);
	if (!sent) {
		printf("approval link re-issued by %s: release %s, step \"%s\": %s\n", j->by,
		       row.id, ps->name, j->url);
		fflush(stdout);
	}
	approval_notice_release(&an);
	j->status = 201;
out:
	if (loaded)
		loaded_exec_release(&le);
	if (have_row)
		exec_row_release(&row);
	server_store_put(srv, st);
}

static void h_relink(struct request *rq)
{
	json_t *in = request_json(rq, NULL);
	if (!in)
		return;
	json_decref(in);
	char *end1, *end2;
	long stage = strtol(rq->params[1], &end1, 10), step = strtol(rq->params[2], &end2, 10);
	if (*end1 || *end2 || stage < 0 || step < 0 || stage > 100000 || step > 100000 ||
	    !*rq->params[1] || !*rq->params[2]) {
		respond_error(rq, 400, "invalid-parameter", "stage and step are indexes from 0");
		return;
	}
	struct relink_job j = {
		.id = rq->params[0], .by = rq->identity, .stage = (int)stage, .step = (int)step
	};
	strbuf_init(&j.err, SIZE_MAX);
	if (server_call(rq->srv, do_relink, &j) < 0)
		respond_error(rq, 503, "closing", "the server is shutting down");
	else if (j.status == 201)
		respond_json(rq, 201,
		             json_pack("{sssisisisssO}", "id", rq->params[0], "stage", j.stage,
		                       "step", j.step, "attempt", j.attempt, "url", j.url,
		                       "channels", j.channels));
	else
		respond_error(rq, j.status,
		              j.status == 404   ? "not-found"
		              : j.status == 409 ? "refused"
		                                : "store-error",
		              "%s", j.err.buf);
	if (j.url) {
		explicit_bzero(j.url, strlen(j.url));
		free(j.url);
	}
	json_decref(j.channels);
	strbuf_release(&j.err);
}

const struct route link_routes[] = {
	{ "POST", "/api/v1/executions/{}/steps/{}/{}/link", h_relink, ROLE_APPROVER },
	{ NULL, NULL, NULL, 0 },
};
