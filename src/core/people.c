/*
 * people.c - lookups in the people directory (see people.h). Directories
 * are small (a team's people), so every lookup is a linear scan.
 */
#include "core/people.h"

#include <string.h>
#include <strings.h>

const struct person *people_find(const struct people *p, const char *name)
{
	for (size_t i = 0; p && name && i < p->n; i++)
		if (!strcmp(p->list[i].name, name))
			return &p->list[i];
	return NULL;
}

const struct person *people_by_email(const struct people *p, const char *email)
{
	for (size_t i = 0; p && email && *email && i < p->n; i++)
		if (p->list[i].email && !strcasecmp(p->list[i].email, email))
			return &p->list[i];
	return NULL;
}

const struct person *people_by_slack(const struct people *p, const char *user_id)
{
	for (size_t i = 0; p && user_id && *user_id && i < p->n; i++)
		if (p->list[i].slack_user && !strcmp(p->list[i].slack_user, user_id))
			return &p->list[i];
	return NULL;
}

bool person_in_group(const struct person *who, const char *group)
{
	for (size_t i = 0; who && group && who->groups[i]; i++)
		if (!strcmp(who->groups[i], group))
			return true;
	return false;
}
