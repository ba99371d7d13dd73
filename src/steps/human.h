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

#include <stdbool.h>

#define HUMAN_MAX_APPROVALS 100 /* the largest minApprovals a plan may ask */

/* Whether by ("alice" or "alice@host") may decide the step: true when it
 * lists no approvers, or lists by or its user part. */
bool human_is_approver(const struct doc_node *step, const char *by);

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

#endif
