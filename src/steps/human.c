/*
 * human.c - the Human step type: people approve or reject the release
 * through a link; rejection stops it.
 */
#include "steps/step-type.h"

static const struct field_spec human_fields[] = {
	{ .name = "message", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
	{ .name = "approvers", .types = T_ARRAY, .flags = F_NONEMPTY, .check = check_string_list },
	{ .name = NULL },
};

static void describe_human(const struct doc_node *step, struct strbuf *out)
{
	describe_line(out, "message", "%s", step_string(step, "message"));
	const struct doc_node *approvers = doc_get(step, "approvers");
	if (!approvers) {
		describe_line(out, "approvers", "anyone who has the approval link");
		return;
	}
	struct strbuf list = STRBUF_INIT;
	for (size_t i = 0; i < approvers->u.array.len; i++)
		strbuf_addf(&list, "%s%s", i ? ", " : "", approvers->u.array.items[i]->u.string.s);
	describe_line(out, "approvers", "%s", list.buf);
	strbuf_release(&list);
}

const struct step_type step_human = {
	.name = "Human",
	.summary = "wait for a person to approve or reject",
	.flags = 0,
	.fields = human_fields,
	.describe = describe_human,
};
