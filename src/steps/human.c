/*
 * human.c - the Human step type: people approve or reject the release
 * through a link; rejection stops it. A step may need several approvals
 * from different people (minApprovals), and by default whoever started a
 * release with listed approvers cannot approve it (allowSelfApproval).
 * Approvers are names, or groups of the people directory ("group:NAME").
 */
#include "steps/human.h"

#include "core/people.h"
#include "plan/diag.h"
#include "plan/plan.h"
#include "plan/step-type.h"

#include <stdio.h>
#include <string.h>

static const struct field_spec human_fields[] = {
	{ .name = "message", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
	{ .name = "approvers", .types = T_ARRAY, .flags = F_NONEMPTY, .check = check_string_list },
	{ .name = "minApprovals", .types = T_INTEGER, .min = 1, .max = HUMAN_MAX_APPROVALS },
	{ .name = "allowSelfApproval", .types = T_BOOL },
	{ .name = "channels", .types = T_ARRAY, .flags = F_NONEMPTY, .check = check_string_list },
	{ .name = NULL },
};

int human_min_approvals(const struct doc_node *step)
{
	const struct doc_node *n = doc_get(step, "minApprovals");
	if (!n || n->kind != DOC_NUMBER || !n->u.number.is_integer || n->u.number.integer < 1)
		return 1;
	return n->u.number.integer > HUMAN_MAX_APPROVALS ? HUMAN_MAX_APPROVALS
	                                                 : (int)n->u.number.integer;
}

bool human_self_approval_allowed(const struct doc_node *step)
{
	const struct doc_node *n = doc_get(step, "allowSelfApproval");
	if (n && n->kind == DOC_BOOL)
		return n->u.boolean;
	return doc_get(step, "approvers") == NULL;
}

/* The part of a name that says who it is: before any "@", unless that is empty. */
static size_t person_len(const char *name)
{
	const char *at = strchr(name, '@');
	return at && at != name ? (size_t)(at - name) : strlen(name);
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

bool human_is_approver(const struct doc_node *step, const struct people *people, const char *by)
{
	const struct doc_node *approvers = doc_get(step, "approvers");
	if (!approvers)
		return true; /* anyone who can reach the release may decide */
	if (!by || !*by)
		return false;
	/* An approver may be listed as "alice" or as "alice@host", or by a
	 * group of the people directory. */
	const char *at = strchr(by, '@');
	size_t user_len = at ? (size_t)(at - by) : strlen(by);
	const struct person *who = NULL;
	bool looked = false;
	for (size_t i = 0; i < approvers->u.array.len; i++) {
		const char *a = approvers->u.array.items[i]->u.string.s;
		if (!strncmp(a, PEOPLE_GROUP_PREFIX, strlen(PEOPLE_GROUP_PREFIX))) {
			if (!looked) {
				who = find_person(people, by);
				looked = true;
			}
			if (who && person_in_group(who, a + strlen(PEOPLE_GROUP_PREFIX)))
				return true;
			continue;
		}
		if (!strcmp(a, by) || (strlen(a) == user_len && !strncmp(a, by, user_len)))
			return true;
	}
	return false;
}

bool human_same_person(const char *a, const char *b)
{
	size_t n = person_len(a);
	return n == person_len(b) && !strncmp(a, b, n);
}

bool human_anonymous(const char *by)
{
	return !by || !*by;
}

/* The step's approvers as "a, b, c" (for messages). */
static void list_approvers(const struct doc_node *approvers, struct strbuf *out)
{
	for (size_t i = 0; i < approvers->u.array.len; i++)
		strbuf_addf(out, "%s%s", i ? ", " : "", approvers->u.array.items[i]->u.string.s);
}

enum human_verdict human_may_decide(const struct doc_node *step, const char *step_name,
                                    const struct human_decider *d, bool approve,
                                    const char *starter, char *const *approved_by, int napproved,
                                    struct strbuf *why)
{
	struct strbuf scratch = STRBUF_INIT;
	struct strbuf *w = why ? why : &scratch;
	const struct doc_node *approvers = doc_get(step, "approvers");
	bool anonymous = human_anonymous(d->by);
	int need = human_min_approvals(step);
	bool self_ok = human_self_approval_allowed(step);
	enum human_verdict v = HUMAN_MAY;
	if (!starter)
		starter = "";
	if (d->approver_role == 0) {
		v = HUMAN_NO_ROLE;
		strbuf_addf(w, "%s may not decide \"%s\": this needs the approver role",
		            anonymous ? "this person" : d->by, step_name);
	} else if (approvers && anonymous) {
		v = HUMAN_NO_NAME;
		strbuf_addf(w, "only the approvers of \"%s\" (", step_name);
		list_approvers(approvers, w);
		strbuf_addstr(w, ") may decide it: say who you are (sign in)");
	} else if (approvers && !human_is_approver(step, d->people, d->by)) {
		v = HUMAN_NOT_LISTED;
		strbuf_addf(w, "%s is not among the approvers of \"%s\"", d->by, step_name);
	} else if (!approve) {
		v = HUMAN_MAY; /* whoever may decide may reject, the starter too */
	} else if (anonymous && need > 1) {
		v = HUMAN_NO_NAME;
		strbuf_addf(w,
		            "\"%s\" needs %d approvals from different people: an approval must "
		            "say who gives it (sign in)",
		            step_name, need);
	} else if (anonymous && !self_ok) {
		v = HUMAN_NO_NAME;
		strbuf_addf(w,
		            "whoever started the release%s%s%s may not approve \"%s\": an approval "
		            "must say who gives it (sign in)",
		            *starter ? " (" : "", starter, *starter ? ")" : "", step_name);
	} else if (!self_ok && *starter && human_same_person(d->by, starter)) {
		v = HUMAN_STARTER;
		strbuf_addf(w,
		            "whoever started the release (%s) cannot approve it: "
		            "allowSelfApproval is false",
		            starter);
	} else {
		for (int i = 0; i < napproved && v == HUMAN_MAY; i++)
			if (human_same_person(approved_by[i], d->by ? d->by : ""))
				v = HUMAN_AGAIN;
		if (v == HUMAN_AGAIN)
			strbuf_addf(w,
			            "%s has already approved \"%s\" (%d of %d approvals so far; "
			            "each must come from a different person)",
			            anonymous ? "someone with the link" : d->by, step_name,
			            napproved, need);
	}
	strbuf_release(&scratch);
	return v;
}

/*
 * minApprovals must be reachable: with approvers listed, at least that many
 * different people. Names that still hold a variable count as different
 * people until they are substituted (checked again then). The scan stops
 * once one person more than needed is found, so a long list costs at most
 * HUMAN_MAX_APPROVALS + 1 comparisons per name.
 *
 * With allowSelfApproval false, minApprovals > 1 and no one to spare, a
 * release started by one of the approvers can never be approved: a
 * warning here (who starts it is not known yet), an error when it is
 * submitted (human_check_starter()). One approver and one approval is a
 * common set-up (releases started by CI, approved by a release manager):
 * no warning, the error at submit time still catches the bad case. The
 * warning comes from the pass before variables are substituted only (once).
 */
static void validate_human(struct vctx *v, const struct doc_node *step)
{
	const struct doc_node *list = doc_get(step, "approvers");
	for (size_t i = 0; list && list->kind == DOC_ARRAY && i < list->u.array.len; i++) {
		const struct doc_node *a = list->u.array.items[i];
		if (a->kind == DOC_STRING && !strcmp(a->u.string.s, PEOPLE_GROUP_PREFIX)) {
			size_t s1 = v_push(v, "approvers");
			size_t s2 = v_push_index(v, i);
			v_error(v, a->pos, NULL,
			        "\"group:\" needs a group name of the people directory, such as "
			        "\"group:release-managers\"");
			v_pop(v, s2);
			v_pop(v, s1);
		}
	}
	const struct doc_member *min = doc_member(step, "minApprovals");
	const struct doc_node *approvers = doc_get(step, "approvers");
	if (!approvers || approvers->kind != DOC_ARRAY)
		return;
	int64_t need = 1;
	struct doc_pos pos = approvers->pos;
	if (min) {
		if (min->value->kind != DOC_NUMBER || !min->value->u.number.is_integer)
			return;
		need = min->value->u.number.integer;
		pos = min->value->pos;
	}
	if (need < 1 || need > HUMAN_MAX_APPROVALS)
		return;                              /* out of range: reported by the field table */
	const char *people[HUMAN_MAX_APPROVALS + 1]; /* NULL: a name still to substitute */
	size_t npeople = 0, len = approvers->u.array.len;
	bool deferred = false;
	for (size_t i = 0; i < len && npeople <= (size_t)need; i++) {
		const struct doc_node *a = approvers->u.array.items[i];
		if (a->kind != DOC_STRING || !*a->u.string.s)
			return; /* reported by check_string_list */
		if (!strncmp(a->u.string.s, PEOPLE_GROUP_PREFIX, strlen(PEOPLE_GROUP_PREFIX)))
			return; /* a group may hold any number of people */
		bool seen = false;
		for (size_t j = 0; j < npeople && !seen && !v_deferred(v, a); j++) {
			if (people[j] && !strcmp(people[j], a->u.string.s))
				return; /* listed twice: reported by check_string_list */
			seen = people[j] && human_same_person(people[j], a->u.string.s);
		}
		deferred |= v_deferred(v, a);
		if (!seen)
			people[npeople++] = v_deferred(v, a) ? NULL : a->u.string.s;
	}
	size_t saved = v_push(v, min ? "minApprovals" : "approvers");
	if (npeople < (size_t)need && npeople == len)
		v_error(v, pos, NULL,
		        "\"minApprovals\" is %lld but \"approvers\" lists only %zu %s",
		        (long long)need, npeople, npeople == 1 ? "person" : "people");
	else if (npeople < (size_t)need)
		v_error(v, pos, NULL,
		        "\"minApprovals\" is %lld but the %zu \"approvers\" are only %zu different "
		        "%s (names are compared by their part before \"@\")",
		        (long long)need, len, npeople, npeople == 1 ? "person" : "people");
	else if (need > 1 && npeople == (size_t)need && !deferred && !v->bound &&
	         !human_self_approval_allowed(step))
		v_warning(v, pos,
		          "a release started by one of the %zu \"approvers\" cannot get its %lld "
		          "%s: allowSelfApproval is false, so its starter may not approve (list "
		          "another approver, or lower \"minApprovals\")",
		          npeople, (long long)need, need == 1 ? "approval" : "approvals");
	v_pop(v, saved);
}

int human_check_starter(const struct doc_node *step, const char *starter, struct strbuf *why)
{
	const struct doc_node *approvers = doc_get(step, "approvers");
	if (!approvers || !starter || !*starter || human_self_approval_allowed(step))
		return 0;
	int need = human_min_approvals(step);
	/* Different people among the approvers, the starter (by any of their
	 * names, as the self-approval rule compares them) left out. */
	const char *people[HUMAN_MAX_APPROVALS];
	int npeople = 0;
	bool listed = false;
	for (size_t i = 0; i < approvers->u.array.len && (npeople < need || !listed); i++) {
		const char *a = approvers->u.array.items[i]->u.string.s;
		bool seen = human_same_person(a, starter);
		listed |= seen;
		for (int j = 0; j < npeople && !seen; j++)
			seen = human_same_person(people[j], a);
		if (!seen && npeople < need)
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

int human_check_plan_starter(const struct plan *plan, const char *starter, struct diag_list *dl)
{
	int n = 0;
	for (size_t i = 0; i < plan->nstages; i++)
		for (size_t j = 0; j < plan->stages[i].nsteps; j++) {
			const struct plan_step *ps = &plan->stages[i].steps[j];
			struct strbuf why = STRBUF_INIT;
			if (!strcmp(ps->type->name, "Human") &&
			    human_check_starter(ps->node, starter, &why) < 0) {
				const struct doc_member *m = doc_member(ps->node, "minApprovals");
				const char *field = m ? "minApprovals" : "approvers";
				const struct doc_node *at = m ? m->value : doc_get(ps->node, field);
				char pointer[96];
				snprintf(pointer, sizeof(pointer), "/stages/%zu/steps/%zu/%s", i, j,
				         field);
				diag_add(dl, DIAG_ERROR, plan->doc->name, at->pos, pointer, NULL,
				         "%s", why.buf);
				n++;
			}
			strbuf_release(&why);
		}
	return n;
}

static void describe_human(const struct doc_node *step, struct strbuf *out)
{
	describe_line(out, "message", "%s", step_string(step, "message"));
	const struct doc_node *approvers = doc_get(step, "approvers");
	int min = human_min_approvals(step);
	bool self = human_self_approval_allowed(step);
	struct strbuf text = STRBUF_INIT;
	if (approvers) {
		strbuf_addf(&text, "%d of ", min);
		for (size_t i = 0; i < approvers->u.array.len; i++)
			strbuf_addf(&text, "%s%s", i ? ", " : "",
			            approvers->u.array.items[i]->u.string.s);
	} else if (min == 1) {
		strbuf_addstr(&text, "anyone who has the approval link");
	} else {
		strbuf_addf(&text, "%d different people who have the approval link", min);
	}
	if (!self)
		strbuf_addstr(&text, "; not the person who started the release");
	else if (approvers)
		strbuf_addstr(&text, "; the person who started the release may approve");
	describe_line(out, "approvals", "%s", text.buf);
	strbuf_release(&text);
}

const struct step_type step_human = {
	.name = "Human",
	.summary = "wait for a person to approve or reject",
	.flags = STEP_INTERNAL | STEP_DECISION,
	.fields = human_fields,
	.validate = validate_human,
	.describe = describe_human,
};
