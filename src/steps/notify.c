/*
 * notify.c - the Notify step type: publish a message to notification
 * channels (the terminal and log by default; SNS, chat, email when set up).
 */
#include "steps/notify.h"

static void check_subject(struct vctx *v, const struct doc_node *value)
{
	for (size_t i = 0; i < value->u.string.len; i++) {
		unsigned char c = (unsigned char)value->u.string.s[i];
		if (c < 0x20 || c == 0x7F) {
			v_error(v, value->pos, NULL,
			        "\"subject\" must be one line without control "
			        "characters");
			return;
		}
	}
}

static const struct field_spec notify_fields[] = {
	{ .name = "message", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
	{ .name = "subject",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 100,
	  .check = check_subject },
	{ .name = "channels", .types = T_ARRAY, .flags = F_NONEMPTY, .check = check_string_list },
	{ .name = "mustDeliver", .types = T_BOOL },
	{ .name = NULL },
};

static void describe_notify(const struct doc_node *step, struct strbuf *out)
{
	const char *subject = step_string(step, "subject");
	if (subject)
		describe_line(out, "subject", "%s", subject);
	describe_line(out, "message", "%s", step_string(step, "message"));
	const struct doc_node *channels = doc_get(step, "channels");
	if (!channels) {
		describe_line(out, "channels", "the default channels");
		return;
	}
	struct strbuf list = STRBUF_INIT;
	for (size_t i = 0; i < channels->u.array.len; i++)
		strbuf_addf(&list, "%s%s", i ? ", " : "", channels->u.array.items[i]->u.string.s);
	describe_line(out, "channels", "%s", list.buf);
	strbuf_release(&list);
	const struct doc_node *must = doc_get(step, "mustDeliver");
	if (must && must->kind == DOC_BOOL && must->u.boolean)
		describe_line(out, "delivery", "the step fails if a channel cannot be reached");
}

const struct step_type step_notify = {
	.name = "Notify",
	.summary = "publish a message to notification channels",
	.flags = STEP_RETRYABLE,
	.fields = notify_fields,
	.describe = describe_notify,
	.start = notify_step_start,
	.cancel = notify_step_cancel,
	.detach = notify_step_detach,
};
