/*
 * approval.h - who may decide a step that waits for people: the one rule.
 *
 * A step type that takes decisions (STEP_DECISION, the Human step) says
 * through its `approval` hook what its rule is - who is listed, how many
 * different people must approve, whether whoever started the release may -
 * as a struct approval_rule. Everything else works on that description:
 * the engine applies approval_may_decide() to every decision whichever
 * front end carries it (engine_on_decision()), and the front ends ask the
 * engine (engine_may_decide()) only to show what a person may do and to
 * answer with the right status. No front end re-implements a part of it.
 *
 * Names: "alice" and "alice@laptop" are one person (compared by the part
 * before any "@"); approvers may name groups of the people directory
 * ("group:NAME"). Pure: no I/O; allocation only for the rule's list.
 */
#ifndef STEPPY_CORE_APPROVAL_H
#define STEPPY_CORE_APPROVAL_H

#include "plan/plan.h"
#include "util/strbuf.h"

#include <stdbool.h>
#include <stddef.h>

#define APPROVAL_MAX 100 /* the largest minApprovals a plan may ask */

struct people;
struct diag_list;

/* What a step type says about who may decide one of its steps. */
struct approval_rule {
	const char *message; /* what people are asked (borrowed from the plan), or NULL */
	/*
	 * Who may decide: names ("alice", "alice@host") and groups of the
	 * people directory ("group:NAME"); strings borrowed from the plan.
	 * NULL (napprovers 0): anyone who can reach the release may decide.
	 */
	const char **approvers;
	size_t napprovers;
	int min_approvals;  /* different people who must approve: 1..APPROVAL_MAX */
	bool self_approval; /* whoever started the release may approve */
	/* Where the plan sets how many approvals (minApprovals, else the
	 * approvers list), for diagnostics: its name and value. NULL when the
	 * step lists no approvers. */
	const char *count_field;
	const struct doc_node *count_node;
};

/*
 * The approval rule of a step, read once when the plan was built (its
 * type's typed config, through its `approval` hook); borrowed from the
 * plan. NULL when the step's type takes no decisions.
 */
const struct approval_rule *approval_rule_of(const struct plan_step *ps);

/* The rule's min_approvals for ps: how many different people must approve
 * it (1 for a step that takes no decisions). */
int approval_needed(const struct plan_step *ps);

/*
 * How far a step's approvals are, as every front end words it: "1 of 2"
 * and, with names, the names of who approved (": alice, bob"), appended to
 * out. approved_by: the napproved names (borrowed).
 */
void approval_progress(int napproved, int need, char *const *approved_by, bool names,
                       struct strbuf *out);

/* What people are asked at ps (its rule's message, borrowed from the plan),
 * or NULL. */
const char *approval_message(const struct plan_step *ps);

/*
 * Whether two names are the same person: compared by their part before any
 * "@" ("alice", "alice@laptop" and "alice@ci" are one person). Empty names
 * (no one said who) match only each other.
 */
bool approval_same_person(const char *a, const char *b);

/* Whether by names nobody: NULL or "" (a decision without a signed-in person). */
bool approval_anonymous(const char *by);

/*
 * Whether by may decide by name: true when the rule lists no approvers, or
 * lists by or its user part, or lists "group:NAME" and the people directory
 * (borrowed; NULL: no directory, so no group has members) puts by (or its
 * user part) in group NAME. An empty or NULL by is nobody's name: false
 * when approvers are listed.
 */
bool approval_is_approver(const struct approval_rule *rule, const struct people *people,
                          const char *by);

/* Who wants to decide, as the front end that carries the decision knows them. */
struct approval_decider {
	const char *by; /* the person's name; NULL or "": nobody signed in (anonymous) */
	/*
	 * Whether they hold the approver role: 1 yes, 0 no (a viewer-only
	 * token), -1 the front end has no roles (a command on the store's
	 * host, trusted as whoever can open the store).
	 */
	int approver_role;
	const struct people *people; /* the directory for "group:" approvers (borrowed), or NULL */
};

/* Why a decision is refused (approval_may_decide()); APPROVAL_MAY when it is not. */
enum approval_verdict {
	APPROVAL_MAY = 0,
	APPROVAL_NO_ROLE,    /* signed in without the approver role */
	APPROVAL_NO_NAME,    /* anonymous, and the step needs to know who decides */
	APPROVAL_NOT_LISTED, /* not among the step's approvers */
	APPROVAL_STARTER,    /* started the release, and allowSelfApproval is false */
	APPROVAL_AGAIN,      /* has already approved this attempt */
};

/* What the rule is asked about: one decision of one step's current attempt. */
struct approval_ask {
	const char *step_name; /* for the reason's text */
	bool approve;          /* an approval (true) or a rejection */
	const char *starter;   /* who started the release; NULL or "" when unknown */
	/* the `by` of each approval of the current attempt so far (borrowed) */
	char *const *approved_by;
	int napproved;
};

/*
 * The one rule of who may decide:
 *
 * - Nobody without the approver role decides (d->approver_role == 0).
 * - A step that lists approvers is decided only by one of them, by name.
 * - An approval must name its giver when the step needs min_approvals > 1
 *   (an anonymous approval could be anyone, again) or self_approval is
 *   false (it could be the starter): anonymous approvals never count then.
 * - The starter does not approve when self_approval is false (rejecting
 *   stays allowed), and nobody approves the same attempt twice.
 *
 * Returns APPROVAL_MAY, or the reason for refusing with its text appended
 * to why (when not NULL), naming the person and the step.
 */
enum approval_verdict approval_may_decide(const struct approval_rule *rule,
                                          const struct approval_decider *d,
                                          const struct approval_ask *ask, struct strbuf *why);

/*
 * Whether a release started by starter can still get the rule's approvals:
 * with self_approval false and starter among the approvers (compared as
 * approval_same_person() does), the other approvers must be at least
 * min_approvals different people. Returns 0, or -1 with the reason
 * appended to why. For submitting (the validator only warns: it does not
 * know who will start the release).
 */
/* approval_may_decide() on the rule of ps; a step that takes no decisions
 * refuses nobody (APPROVAL_MAY). */
enum approval_verdict approval_may_decide_at(const struct plan_step *ps,
                                             const struct approval_decider *d,
                                             const struct approval_ask *ask, struct strbuf *why);

int approval_check_starter(const struct approval_rule *rule, const char *starter,
                           struct strbuf *why);

/*
 * approval_check_starter() for every step of plan that takes decisions:
 * an error diagnostic (at the rule's count_node) for each step that a
 * release started by starter could never get through. Returns how many
 * were added to dl.
 */
int approval_check_plan_starter(const struct plan *plan, const char *starter, struct diag_list *dl);

#endif
