/*
 * human.c - the Human step type: people approve or reject the release
 * through a link; rejection stops it. A step may need several approvals
 * from different people (minApprovals), and by default whoever started a
 * release with listed approvers cannot approve it (allowSelfApproval).
 * Approvers are names, or groups of the people directory ("group:NAME").
 */
#include "core/approval.h"
#include "core/people.h"
#include "plan/diag.h"
#include "plan/plan.h"
#include "plan/step-type.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

static const struct field_spec human_fields[] = {
	{ .name = "message", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
	{ .name = "approvers", .types = T_ARRAY, .flags = F_NONEMPTY, .check = check_string_list },
	{ .name = "minApprovals", .types = T_INTEGER, .min = 1, .max = APPROVAL_MAX },
	{ .name = "allowSelfApproval", .types = T_BOOL },
	{ .name = "channels", .types = T_ARRAY, .flags = F_NONEMPTY, .check = check_string_list },
	{ .name = NULL },
};

/* minApprovals: distinct people who must approve; 1 when absent. */
static int min_approvals(const struct doc_node *step)
{
	const struct doc_node *n = doc_get(step, "minApprovals");
	if (!n || n->kind != DOC_NUMBER || !n->u.number.is_integer || n->u.number.integer < 1)
		return 1;
	return n->u.number.integer > APPROVAL_MAX ? APPROVAL_MAX : (int)n->u.number.integer;
}

/* allowSelfApproval; when absent, false if the step lists approvers, else true. */
static bool self_approval_allowed(const struct doc_node *step)
{
	const struct doc_node *n = doc_get(step, "allowSelfApproval");
	if (n && n->kind == DOC_BOOL)
		return n->u.boolean;
	return doc_get(step, "approvers") == NULL;
}

/*
 * minApprovals must be reachable: with approvers listed, at least that many
 * different people. Names that still hold a variable count as different
 * people until they are substituted (checked again then). The scan stops
 * once one person more than needed is found, so a long list costs at most
 * APPROVAL_MAX + 1 comparisons per name.
 *
 * With allowSelfApproval false, minApprovals > 1 and no one to spare, a
 * release started by one of the approvers can never be approved: a
 * warning here (who starts it is not known yet), an error when it is
 * submitted (approval_check_starter()). One approver and one approval is a
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
	if (need < 1 || need > APPROVAL_MAX)
		return;                       /* out of range: reported by the field table */
	const char *people[APPROVAL_MAX + 1]; /* NULL: a name still to substitute */
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
			seen = people[j] && approval_same_person(people[j], a->u.string.s);
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
	         !self_approval_allowed(step))
		v_warning(v, pos,
		          "a release started by one of the %zu \"approvers\" cannot get its %lld "
		          "%s: allowSelfApproval is false, so its starter may not approve (list "
		          "another approver, or lower \"minApprovals\")",
		          npeople, (long long)need, need == 1 ? "approval" : "approvals");
	v_pop(v, saved);
}

static void describe_human(const struct doc_node *step, struct strbuf *out)
{
	describe_line(out, "message", "%s", step_string(step, "message"));
	const struct doc_node *approvers = doc_get(step, "approvers");
	int min = min_approvals(step);
	bool self = self_approval_allowed(step);
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

/* A Human step, read once when the plan is built: its rule, for the core
 * (core/approval.h). Its fields are read here only. */
static void *bind_human(const struct doc_node *step)
{
	struct approval_rule *r = xcalloc(1, sizeof(*r));
	const struct doc_node *approvers = doc_get(step, "approvers");
	const struct doc_member *min = doc_member(step, "minApprovals");
	r->message = step_string(step, "message");
	r->min_approvals = min_approvals(step);
	r->self_approval = self_approval_allowed(step);
	if (!approvers || approvers->kind != DOC_ARRAY || !approvers->u.array.len)
		return r;
	r->napprovers = approvers->u.array.len;
	r->approvers = xcalloc(r->napprovers, sizeof(*r->approvers));
	for (size_t i = 0; i < r->napprovers; i++)
		r->approvers[i] = approvers->u.array.items[i]->u.string.s;
	r->count_field = min ? "minApprovals" : "approvers";
	r->count_node = min ? min->value : approvers;
	return r;
}

static void free_human(void *config)
{
	struct approval_rule *r = config;
	if (r)
		free(r->approvers);
	free(r);
}

static const struct approval_rule *human_approval(const void *config)
{
	return config;
}

/* "approval by alice, bob (asked through slack)". */
static void human_waiting_for(const struct doc_node *step, const struct step_view *view,
                              struct strbuf *out)
{
	const struct doc_node *approvers = doc_get(step, "approvers");
	strbuf_addstr(out, "approval");
	for (size_t i = 0; approvers && i < approvers->u.array.len; i++)
		strbuf_addf(out, "%s%s", i ? ", " : " by ",
		            approvers->u.array.items[i]->u.string.s);
	const json_t *to = json_object_get(view->progress, "channels");
	for (size_t i = 0; i < json_array_size(to); i++)
		strbuf_addf(out, "%s%s", i ? ", " : " (asked through ",
		            json_string_value(json_array_get(to, i)));
	if (json_array_size(to))
		strbuf_addch(out, ')');
}

const struct step_type step_human = {
	.name = "Human",
	.summary = "wait for a person to approve or reject",
	.flags = STEP_INTERNAL | STEP_DECISION,
	.fields = human_fields,
	.validate = validate_human,
	.describe = describe_human,
	.bind = bind_human,
	.free_config = free_human,
	.approval = human_approval,
	.waiting_for = human_waiting_for,
};
