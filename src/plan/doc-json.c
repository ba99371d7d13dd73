/*
 * doc-json.c - doc tree to jansson (see doc-json.h).
 */
#include "plan/doc-json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

void execution_started_redact(json_t *data)
{
	/* What is sealed for storing is what output must not show. */
	json_decref(execution_started_seal(data));
}

/* Walks the objects that say "secret": true with a non-empty string value,
 * in a fixed order (jansson keeps insertion order), calling fn on each. */
static int walk_secrets(json_t *value, int (*fn)(json_t *obj, void *arg), void *arg)
{
	if (json_is_array(value)) {
		size_t i;
		json_t *item;
		json_array_foreach(value, i, item)
		{
			if (walk_secrets(item, fn, arg) < 0)
				return -1;
		}
		return 0;
	}
	if (!json_is_object(value))
		return 0;
	const char *v = json_string_value(json_object_get(value, "value"));
	if (json_is_true(json_object_get(value, "secret")) && v && *v && fn(value, arg) < 0)
		return -1;
	const char *key;
	json_t *item;
	json_object_foreach(value, key, item)
	{
		if (walk_secrets(item, fn, arg) < 0)
			return -1;
	}
	return 0;
}

static int take_value(json_t *obj, void *arg)
{
	json_array_append(arg, json_object_get(obj, "value"));
	json_object_set_new(obj, "value", json_string("****"));
	return 0;
}

/* True if s holds one of the secrets (strings of a JSON array). */
static bool holds_secret(const char *s, const json_t *secrets)
{
	size_t i;
	json_t *secret;
	json_array_foreach(secrets, i, secret)
	{
		const char *v = json_string_value(secret);
		if (v && *v && strstr(s, v))
			return true;
	}
	return false;
}

/*
 * Replaces by "****" every string of value (object member values, array
 * items; not the already masked values of secret objects) that holds one
 * of the secrets, recording [path, original] in out. path is the JSON
 * array of keys and indexes leading to value.
 */
static void take_strings(json_t *value, json_t *path, const json_t *secrets, json_t *out)
{
	bool secret_obj = json_is_object(value) && json_is_true(json_object_get(value, "secret"));
	if (json_is_array(value)) {
		for (size_t i = 0; i < json_array_size(value); i++) {
			json_t *item = json_array_get(value, i);
			json_array_append_new(path, json_integer((json_int_t)i));
			if (json_is_string(item) &&
			    holds_secret(json_string_value(item), secrets)) {
				json_array_append_new(
				    out, json_pack("[oO]", json_deep_copy(path), item));
				json_array_set_new(value, i, json_string("****"));
			} else {
				take_strings(item, path, secrets, out);
			}
			json_array_remove(path, json_array_size(path) - 1);
		}
	} else if (json_is_object(value)) {
		const char *key;
		json_t *item;
		void *tmp;
		json_object_foreach_safe(value, tmp, key, item)
		{
			if (secret_obj && !strcmp(key, "value"))
				continue;
			json_array_append_new(path, json_string(key));
			if (json_is_string(item) &&
			    holds_secret(json_string_value(item), secrets)) {
				json_array_append_new(
				    out, json_pack("[oO]", json_deep_copy(path), item));
				json_object_set_new(value, key, json_string("****"));
			} else {
				take_strings(item, path, secrets, out);
			}
			json_array_remove(path, json_array_size(path) - 1);
		}
	}
}

json_t *execution_started_seal(json_t *data)
{
	json_t *values = json_array();
	walk_secrets(json_object_get(data, "plan"), take_value, values);
	if (json_array_size(values) == 0) {
		json_decref(values);
		return NULL;
	}
	json_t *taken = json_object();
	json_t *vars = json_object_get(data, "variables");
	const char *name;
	json_t *v;
	json_object_foreach(vars, name, v)
	{
		const char *value = json_string_value(v);
		size_t i;
		json_t *secret;
		json_array_foreach(values, i, secret)
		{
			if (value && *value && strstr(json_string_value(secret), value)) {
				json_object_set(taken, name, v);
				json_object_set_new(vars, name, json_string("****"));
				break;
			}
		}
	}
	/* Anything else that holds a secret (an Exec step's env made from the
	 * same variable ...) is taken too, by its path. */
	json_t *needles = json_deep_copy(values);
	json_object_foreach(taken, name, v)
	{
		json_array_append(needles, v);
	}
	json_t *strings = json_array(), *path = json_array();
	take_strings(json_object_get(data, "plan"), path, needles, strings);
	json_decref(path);
	json_decref(needles);
	return json_pack("{sososo}", "values", values, "variables", taken, "strings", strings);
}

struct put_back {
	const json_t *values;
	size_t next;
};

static int put_value(json_t *obj, void *arg)
{
	struct put_back *pb = arg;
	json_t *v = json_array_get(pb->values, pb->next++);
	if (!json_is_string(v))
		return -1;
	json_object_set(obj, "value", v);
	return 0;
}

int execution_started_unseal(json_t *data, const json_t *sealed)
{
	struct put_back pb = { json_object_get(sealed, "values"), 0 };
	if (!json_is_array(pb.values) ||
	    walk_secrets(json_object_get(data, "plan"), put_value, &pb) < 0 ||
	    pb.next != json_array_size(pb.values))
		return -1;
	size_t i;
	json_t *item;
	json_array_foreach(json_object_get(sealed, "strings"), i, item)
	{
		json_t *path = json_array_get(item, 0), *at = json_object_get(data, "plan");
		json_t *parent = NULL, *step;
		size_t k;
		json_array_foreach(path, k, step)
		{
			parent = at;
			at = json_is_string(step)
			         ? json_object_get(parent, json_string_value(step))
			         : json_array_get(parent, (size_t)json_integer_value(step));
		}
		json_t *last = json_array_get(path, json_array_size(path) - 1);
		json_t *original = json_array_get(item, 1);
		if (!json_is_string(at) || !json_is_string(original) || !last)
			return -1;
		if (json_is_string(last))
			json_object_set(parent, json_string_value(last), original);
		else
			json_array_set(parent, (size_t)json_integer_value(last), original);
	}
	json_t *vars = json_object_get(data, "variables");
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)json_object_get(sealed, "variables"), name, v)
	{
		if (!json_is_object(vars) || !json_is_string(v))
			return -1;
		json_object_set(vars, name, v);
	}
	return 0;
}
