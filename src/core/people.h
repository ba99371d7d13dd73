/*
 * people.h - the people directory: who the people of a `steppy serve`
 * installation are, how other systems name them (email, Slack user id) and
 * which groups they belong to.
 *
 * The directory is plain data loaded with the server's configuration
 * (server/config.c, key "people"). The core reads it to apply its rules
 * (a Human step's approvers may name groups as "group:NAME"); the front ends
 * read it to turn an outside identity (an OpenID Connect claim, a Slack user
 * id) into a steppy name. No I/O, no allocation.
 */
#ifndef STEPPY_CORE_PEOPLE_H
#define STEPPY_CORE_PEOPLE_H

#include <stdbool.h>
#include <stddef.h>

#define PEOPLE_GROUP_PREFIX "group:" /* how approvers name a group */

struct person {
	const char *name;       /* the directory key: how histories name them; never NULL */
	const char *email;      /* or NULL */
	const char *slack_user; /* Slack user id ("U0123ABCD"), or NULL */
	const char **groups;    /* NULL-terminated, never NULL */
	unsigned roles;         /* ROLE_* bits (server/config.h) granted on sign-in */
};

struct people {
	const struct person *list; /* borrowed from whoever loaded it (serve_config) */
	size_t n;
};

/* The person named exactly name, or NULL (also when p is NULL). */
const struct person *people_find(const struct people *p, const char *name);

/* The person with this email, compared case-insensitively, or NULL. */
const struct person *people_by_email(const struct people *p, const char *email);

/* The person with this Slack user id (compared exactly), or NULL. */
const struct person *people_by_slack(const struct people *p, const char *user_id);

/* Whether who belongs to group (exact name, without the "group:" prefix).
 * False when who is NULL. */
bool person_in_group(const struct person *who, const char *group);

#endif
