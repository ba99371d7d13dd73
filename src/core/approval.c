/*
 * approval.c - who may decide a step that waits for people (see approval.h).
 *
 * The rule works on the typed description a step type gives
 * (struct approval_rule), never on plan fields: which fields a step type
 * has is its own business (src/steps/human.c).
 */
#include "core/approval.h"

#include "core/people.h"
#include "plan/diag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rule of a step that takes no decisions: it refuses nobody. */
static const struct approval_rule no_rule = { .min_approvals = 1, .self_approval = true };

const struct approval_rule *approval_rule_of(const struct plan_step *ps)
{
	if (!(ps->type->flags & STEP_DECISION) || !ps->type->approval || !ps->config)
		return NULL;
	return ps->type->approval(ps->config);
}

int approval_needed(const struct plan_step *ps)
{
	const struct approval_rule *rule = approval_rule_of(ps);
	return rule ? rule->min_approvals : 1;
}

void approval_progress(int napproved, int need, char *const *approved_by, bool names,
                       struct strbuf *out)
{
	strbuf_addf(out, "%d of %d", napproved, need);
	for (int i = 0; names && i < napproved; i++)
		strbuf_addf(out, "%s%s", i ? ", " : ": ", approved_by[i]);
}

const char *approval_message(const struct plan_step *ps)
{
	const struct approval_rule *rule = approval_rule_of(ps);
	return rule ? rule->message : NULL;
}

enum approval_verdict approval_may_decide_at(const struct plan_step *ps,
                                             const struct approval_decider *d,
                                             const struct approval_ask *ask, struct strbuf *why)
{
	const struct approval_rule *rule = approval_rule_of(ps);
	return approval_may_decide(rule ? rule : &no_rule, d, ask, why);
}

/* The part of a name that says who it is: before any "@", unless that is empty. */
static size_t person_len(const char *name)
{
	const char *at = strchr(name, '@');
	return at && at != name ? (size_t)(at - name) : strlen(name);
}

bool approval_same_person(const char *a, const char *b)
{
	size_t n = person_len(a);
	return n == person_len(b) && !strncmp(a, b, n);
}

bool approval_anonymous(const char *by)
{
	return !by || !*by;
}

/* The directory's entry for by, or for its user part ("alice@laptop" is alice). */
static const struct person *find_person(const struct people *people, const char *by)
{
	const struct person *who = people_find(people, by);
	size_t n = person_len(by);
	if (!who && by[n] && n < 128) {
		char user[128];
		memcpy(user, by, n);
		user[n] = '\0';
		who = people_find(people, user);
	}
	return who;
}

bool approval_is_approver(const struct approval_rule *rule, const struct people *people,
                          const char *by)
{
	if (!rule->napprovers)
		return true; /* anyone who can reach the release may decide */
	if (!by || !*by)
		return false;
	/* An approver may be listed as "alice" or as "alice@host", or by a
	 * group of the people directory. */
	const char *at = strchr(by, '@');
	size_t user_len = at ? (size_t)(at - by) : strlen(by);
	const struct person *who = NULL;
	bool looked = false;
	size_t prefix = strlen(PEOPLE_GROUP_PREFIX);
	for (size_t i = 0; i < rule->napprovers; i++) {
		const char *a = rule->approvers[i];
		if (!strncmp(a, PEOPLE_GROUP_PREFIX, prefix)) {
			if (!looked) {
				who = find_person(people, by);
				looked = true;
			}
			if (who && person_in_group(who, a + prefix))
				return true;
			continue;
		}
		if (!strcmp(a, by) || (strlen(a) == user_len && !strncmp(a, by, user_len)))
			return true;
	}
	return false;
}

/* The rule's approvers as "a, b, c" (for messages). */
static void list_approvers(const struct approval_rule *rule, struct strbuf *out)
{
	for (size_t i = 0; i < rule->napprovers; i++)
		strbuf_addf(out, "%s%s", i ? ", " : "", rule->approvers[i]);
}

/* The rules about who approves (not who decides at all): see approval.h. */
static enum approval_verdict may_approve(const struct approval_rule *rule,
                                         const struct approval_decider *d,
                                         const struct approval_ask *ask, struct strbuf *w)
{
	bool anonymous = approval_anonymous(d->by);
	const char *starter = ask->starter ? ask->starter : "";
	int need = rule->min_approvals;
	if (anonymous && need > 1) {
		strbuf_addf(w,
		            "\"%s\" needs %d approvals from different people: an approval must "
		            "say who gives it (sign in)",
		            ask->step_name, need);
		return APPROVAL_NO_NAME;
	}
	if (anonymous && !rule->self_approval) {
		strbuf_addf(w,
		            "whoever started the release%s%s%s may not approve \"%s\": an approval "
		            "must say who gives it (sign in)",
		            *starter ? " (" : "", starter, *starter ? ")" : "", ask->step_name);
		return APPROVAL_NO_NAME;
	}
	if (!rule->self_approval && *starter && approval_same_person(d->by, starter)) {
		strbuf_addf(w,
		            "whoever started the release (%s) cannot approve it: "
		            "allowSelfApproval is false",
		            starter);
		return APPROVAL_STARTER;
	}
	for (int i = 0; i < ask->napproved; i++)
		if (approval_same_person(ask->approved_by[i], d->by ? d->by : "")) {
			strbuf_addf(w,
			            "%s has already approved \"%s\" (%d of %d approvals so far; "
			            "each must come from a different person)",
			            anonymous ? "someone with the link" : d->by, ask->step_name,
			            ask->napproved, need);
			return APPROVAL_AGAIN;
		}
	return APPROVAL_MAY;
}

enum approval_verdict approval_may_decide(const struct approval_rule *rule,
                                          const struct approval_decider *d,
                                          const struct approval_ask *ask, struct strbuf *why)
{
	struct strbuf scratch = STRBUF_INIT;
	struct strbuf *w = why ? why : &scratch;
	bool anonymous = approval_anonymous(d->by);
	enum approval_verdict v = APPROVAL_MAY;
	if (d->approver_role == 0) {
		v = APPROVAL_NO_ROLE;
		strbuf_addf(w, "%s may not decide \"%s\": this needs the approver role",
		            anonymous ? "this person" : d->by, ask->step_name);
	} else if (rule->napprovers && anonymous) {
		v = APPROVAL_NO_NAME;
		strbuf_addf(w, "only the approvers of \"%s\" (", ask->step_name);
		list_approvers(rule, w);
		strbuf_addstr(w, ") may decide it: say who you are (sign in)");
	} else if (rule->napprovers && !approval_is_approver(rule, d->people, d->by)) {
		v = APPROVAL_NOT_LISTED;
		strbuf_addf(w, "%s is not among the approvers of \"%s\"", d->by, ask->step_name);
	} else if (ask->approve) {
		v = may_approve(rule, d, ask, w);
	} /* else: whoever may decide may reject, the starter too */
	strbuf_release(&scratch);
	return v;
}

int approval_check_starter(const struct approval_rule *rule, const char *starter,
                           struct strbuf *why)
{
	if (!rule->napprovers || !starter || !*starter || rule->self_approval)
		return 0;
	int need = rule->min_approvals;
	/* Different people among the approvers, the starter (by any of their
	 * names, as the self-approval rule compares them) left out. */
	const char *people[APPROVAL_MAX];
	int npeople = 0;
	bool listed = false;
	for (size_t i = 0; i < rule->napprovers && (npeople < need || !listed); i++) {
		const char *a = rule->approvers[i];
		bool seen = approval_same_person(a, starter);
		listed |= seen;
		for (int j = 0; j < npeople && !seen; j++)
			seen = approval_same_person(people[j], a);
		if (!seen && npeople < need && npeople < APPROVAL_MAX)
			people[npeople++] = a;
	}
	if (!listed || npeople >= need)
		return 0;
	strbuf_addf(why,
	            "%s started the release and is among the approvers, and allowSelfApproval is "
	            "false: the others are %d %s, fewer than minApprovals (%d); nobody could "
	            "approve it",
	            starter, npeople, npeople == 1 ? "person" : "people", need);
	return -1;
}

int approval_check_plan_starter(const struct plan *plan, const char *starter, struct diag_list *dl)
{
	int n = 0;
	for (size_t i = 0; i < plan->nstages; i++)
		for (size_t j = 0; j < plan->stages[i].nsteps; j++) {
			const struct approval_rule *rule =
			    approval_rule_of(&plan->stages[i].steps[j]);
			struct strbuf why = STRBUF_INIT;
			if (rule && approval_check_starter(rule, starter, &why) < 0 &&
			    rule->count_node) {
				char pointer[96];
				snprintf(pointer, sizeof(pointer), "/stages/%zu/steps/%zu/%s", i, j,
				         rule->count_field);
				diag_add(dl, DIAG_ERROR, plan->doc->name, rule->count_node->pos,
				         pointer, NULL, "%s", why.buf);
				n++;
			}
			strbuf_release(&why);
		}
	return n;
}
