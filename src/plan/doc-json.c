/*
 * doc-json.c - doc tree to jansson (see doc-json.h).
 */
#include "plan/doc-json.h"

#include <stdlib.h>

json_t *doc_to_json(const struct doc_node *node)
{
	json_t *j = NULL;
	switch (node->kind) {
	case DOC_NULL:
		j = json_null();
		break;
	case DOC_BOOL:
		j = json_boolean(node->u.boolean);
		break;
	case DOC_NUMBER:
		j = node->u.number.is_integer ? json_integer(node->u.number.integer)
		                              : json_real(node->u.number.value);
		break;
	case DOC_STRING:
		j = json_stringn_nocheck(node->u.string.s, node->u.string.len);
		break;
	case DOC_ARRAY:
		j = json_array();
		for (size_t i = 0; j && i < node->u.array.len; i++)
			json_array_append_new(j, doc_to_json(node->u.array.items[i]));
		break;
	case DOC_OBJECT:
		j = json_object();
		for (size_t i = 0; j && i < node->u.object.len; i++)
			/* Later duplicates cannot occur in a valid plan; in a payload the
			 * first wins, as doc_get() reads it. */
			if (!json_object_get(j, node->u.object.members[i].key))
				json_object_set_new_nocheck(
				    j, node->u.object.members[i].key,
				    doc_to_json(node->u.object.members[i].value));
		break;
	}
	if (!j)
		abort(); /* jansson fails only when out of memory */
	return j;
}

void plan_json_redact(json_t *value)
{
	if (json_is_array(value)) {
		size_t i;
		json_t *item;
		json_array_foreach(value, i, item)
		{
			plan_json_redact(item);
		}
		return;
	}
	if (!json_is_object(value))
		return;
	if (json_is_true(json_object_get(value, "secret")) && json_object_get(value, "value"))
		json_object_set_new(value, "value", json_string("****"));
	const char *key;
	json_t *item;
	json_object_foreach(value, key, item)
	{
		plan_json_redact(item);
	}
}
