/*
 * human.h - what the engine and the commands read from a Human step.
 *
 * The fields are checked by the plan validator (human.c); these accessors
 * take a valid step and apply the defaults, so the rules live in one place:
 * how many approvals a step needs, whether whoever started the release may
 * give one, and when two names are the same person.
 */
#ifndef STEPPY_STEPS_HUMAN_H
#define STEPPY_STEPS_HUMAN_H

#include "plan/doc.h"
#include "util/strbuf.h"

#include <stdbool.h>

#define HUMAN_MAX_APPROVALS 100 /* the largest minApprovals a plan may ask */

struct people;

/*
 * Whether by ("alice" or "alice@host") may decide the step: true when it
 * lists no approvers, or lists by or its user part, or lists "group:NAME"
 * and the people directory (borrowed; NULL: no directory, so no group has
 * members) puts by (or its user part) in group NAME. An empty or NULL by
 * is nobody's name: false when approvers are listed.
 */
bool human_is_approver(const struct doc_node *step, const struct people *people, const char *by);

/* minApprovals: distinct people who must approve; 1 when absent. */
int human_min_approvals(const struct doc_node *step);

/* allowSelfApproval; when absent, false if the step lists approvers, else true. */
bool human_self_approval_allowed(const struct doc_node *step);

/*
 * Whether two names are the same person. Names are compared by their part
 * before any "@", as approvers are matched: "alice", "alice@laptop" and
 * "alice@ci" are one person. Empty names (no one said who) match only each
 * other.
 */
bool human_same_person(const char *a, const char *b);

/*
 * Whether a release started by starter can still get the step's approvals:
 * with allowSelfApproval false and starter among the approvers (compared
 * as human_same_person() does, as the self-approval rule is), the other
 * approvers must be at least minApprovals different people. Returns 0, or
 * -1 with the reason appended to why. For submitting (the validator only
 * warns: it does not know who will start the release).
 */
int human_check_starter(const struct doc_node *step, const char *starter, struct strbuf *why);

struct plan;
struct diag_list;

/*
 * human_check_starter() for every Human step of plan: an error diagnostic
 * (at the step's minApprovals, else its approvers) for each step that a
 * release started by starter could never get through. Returns how many
 * were added to dl.
 */
int human_check_plan_starter(const struct plan *plan, const char *starter, struct diag_list *dl);

/* Whether by names nobody: NULL or "" (a decision without a signed-in person). */
bool human_anonymous(const char *by);

/* Who wants to decide, as the front end that carries the decision knows them. */
struct human_decider {
	const char *by; /* the person's name; NULL or "": nobody signed in (anonymous) */
	/*
	 * Whether they hold the approver role: 1 yes, 0 no (a viewer-only
	 * token), -1 the front end has no roles (a command on the store's
	 * host, trusted as whoever can open the store).
	 */
	int approver_role;
	const struct people *people; /* the directory for "group:" approvers (borrowed), or NULL */
};

/* Why a decision is refused (human_may_decide()); HUMAN_MAY when it is not. */
enum human_verdict {
	HUMAN_MAY = 0,
	HUMAN_NO_ROLE,    /* signed in without the approver role */
	HUMAN_NO_NAME,    /* anonymous, and the step needs to know who decides */
	HUMAN_NOT_LISTED, /* not among the step's approvers */
	HUMAN_STARTER,    /* started the release, and allowSelfApproval is false */
	HUMAN_AGAIN,      /* has already approved this attempt */
};

/*
 * The one rule of who may decide a Human step; the engine applies it to
 * every decision (engine_on_decision()), and front ends ask it only to
 * show what a person may do. step: a valid Human step; approve: an
 * approval (true) or a rejection; starter: who started the release (""
 * when unknown); approved_by/napproved: the approvals of the current
 * attempt so far (borrowed).
 *
 * - Nobody without the approver role decides (d->approver_role == 0).
 * - A step that lists approvers is decided only by one of them, by name.
 * - An approval must name its giver when the step needs minApprovals > 1
 *   (an anonymous approval could be anyone, again) or allowSelfApproval is
 *   false (it could be the starter): anonymous approvals never count then.
 * - The starter does not approve when allowSelfApproval is false
 *   (rejecting stays allowed), and nobody approves the same attempt twice.
 *
 * Returns HUMAN_MAY, or the reason for refusing with its text appended to
 * why (when not NULL), naming the person and the step.
 */
enum human_verdict human_may_decide(const struct doc_node *step, const char *step_name,
                                    const struct human_decider *d, bool approve,
                                    const char *starter, char *const *approved_by, int napproved,
                                    struct strbuf *why);

#endif
