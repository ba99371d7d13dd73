/*
 * event.c - event names and event lists (see event.h).
 */
#include "core/event.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[] = {
#define EVENT_NAME(e, name, what) name,
	EVENT_LIST(EVENT_NAME)
#undef EVENT_NAME
};

const char *event_type_name(enum event_type type)
{
	return (unsigned)type < EV__COUNT ? names[type] : "Unknown";
}

int event_type_from_name(const char *name)
{
	for (int i = 0; i < EV__COUNT; i++)
		if (!strcmp(names[i], name))
			return i;
	return -1;
}

struct event *event_list_add(struct event_list *list, enum event_type type, int stage, int step,
                             int attempt, json_t *data)
{
	if (list->len == list->alloc) {
		list->alloc = list->alloc ? list->alloc * 2 : 16;
		list->items = xreallocarray(list->items, list->alloc, sizeof(*list->items));
	}
	struct event *e = &list->items[list->len++];
	*e = (struct event){ .type = type,
		             .stage = stage,
		             .step = step,
		             .attempt = attempt,
		             .data = data ? data : json_object() };
	return e;
}

void event_list_clear(struct event_list *list)
{
	for (size_t i = 0; i < list->len; i++)
		json_decref(list->items[i].data);
	list->len = 0;
}

void event_list_release(struct event_list *list)
{
	event_list_clear(list);
	free(list->items);
	*list = (struct event_list)EVENT_LIST_INIT;
}
