/*
 * lambda.c - the Lambda step type: invoke an AWS Lambda function with a
 * JSON payload; a function error fails the step.
 */
#include "plan/step-type.h"

#include "plan/doc-json.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#define FN_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

static const char *const invocation_types[] = { "RequestResponse", "Event", NULL };

static void check_function_name(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (v_deferred(v, value) || !*s)
		return;
	if (!strncmp(s, "arn:", 4)) {
		if (!strstr(s, ":lambda:") || !strstr(s, ":function:"))
			v_error(v, value->pos, NULL,
			        "\"%.80s\" is not a Lambda function ARN "
			        "(arn:aws:lambda:REGION:ACCOUNT:function:NAME)",
			        s);
		return;
	}
	const char *colon = strchr(s, ':');
	size_t name_len = colon ? (size_t)(colon - s) : strlen(s);
	if (name_len == 0 || name_len > 64 || strspn(s, FN_CHARS) != name_len ||
	    (colon && (!colon[1] || !str_all_in(colon + 1, FN_CHARS "$"))))
		v_error(
		    v, value->pos, NULL,
		    "\"%.80s\" is not a Lambda function name (up to 64 letters, digits, - and _, "
		    "optionally :VERSION or :ALIAS) or ARN",
		    s);
}

static void check_qualifier(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (!v_deferred(v, value) && *s && strcmp(s, "$LATEST") != 0 && !str_all_in(s, FN_CHARS))
		v_error(v, value->pos, NULL,
		        "\"%.60s\" is not a version number, alias name or $LATEST", s);
}

/* Any JSON, but a key given twice would be lost on the way to the function. */
static void check_payload(struct vctx *v, const struct doc_node *value)
{
	check_unique_keys(v, value, "the payload");
}

static const struct field_spec lambda_fields[] = {
	{ .name = "functionName",
	  .types = T_STRING,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .max_len = 170,
	  .check = check_function_name },
	{ .name = "payload", .types = T_ANY, .check = check_payload },
	{ .name = "invocationType", .types = T_STRING, .choices = invocation_types },
	{ .name = "qualifier",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 128,
	  .check = check_qualifier },
	{ .name = NULL },
};

static void validate_lambda(struct vctx *v, const struct doc_node *step)
{
	const char *fn = step_string(step, "functionName");
	const struct doc_member *q = doc_member(step, "qualifier");
	if (!fn || !q)
		return;
	const char *name = !strncmp(fn, "arn:", 4) ? strstr(fn, ":function:") : fn;
	if (name && !strncmp(name, ":function:", 10))
		name += 10;
	if (name && strchr(name, ':')) {
		size_t saved = v_push(v, "qualifier");
		v_error(v, q->key_pos, NULL,
		        "the function name already names a version or alias; give it in one place");
		v_pop(v, saved);
	}
}

#define PAYLOAD_SHOWN 80 /* characters of the payload's JSON that `steppy plan` shows */

struct summary {
	struct strbuf *out;
	size_t chars; /* characters in out so far */
	bool more;    /* there is text past PAYLOAD_SHOWN characters */
};

/* json_dump_callback() sink: keeps PAYLOAD_SHOWN characters, then stops the dump. */
static int summary_add(const char *buf, size_t size, void *data)
{
	struct summary *sum = data;
	for (size_t i = 0; i < size; i++) {
		bool lead = ((unsigned char)buf[i] & 0xC0) != 0x80;
		if (lead && sum->chars == PAYLOAD_SHOWN) {
			sum->more = true;
			return -1;
		}
		sum->chars += lead;
		strbuf_addch(sum->out, buf[i]);
	}
	return 0;
}

/* Appends the payload as one line of compact JSON, cut at PAYLOAD_SHOWN characters. */
static void payload_summary(struct strbuf *out, const struct doc_node *payload)
{
	json_t *j = doc_to_json(payload);
	struct summary sum = { .out = out };
	json_dump_callback(j, summary_add, &sum,
	                   JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (sum.more)
		strbuf_addstr(out, "...");
}

static void describe_lambda(const struct doc_node *step, struct strbuf *out)
{
	const char *qualifier = step_string(step, "qualifier");
	describe_line(out, "function", "%s%s%s", step_string(step, "functionName"),
	              qualifier ? ":" : "", qualifier ? qualifier : "");
	const char *type = step_string(step, "invocationType");
	if (type && !strcmp(type, "Event"))
		describe_line(out, "waits", "no: asynchronous invocation (Event)");
	else
		describe_line(out, "waits", "for the function's response; a function error fails");
	const struct doc_node *payload = doc_get(step, "payload");
	if (payload) {
		struct strbuf p = STRBUF_INIT;
		payload_summary(&p, payload);
		describe_line(out, "payload", "%s", p.buf);
		strbuf_release(&p);
	}
}

const struct step_type step_lambda = {
	.name = "Lambda",
	.summary = "invoke an AWS Lambda function",
	.flags = STEP_AWS | STEP_RETRYABLE,
	.fields = lambda_fields,
	.validate = validate_lambda,
	.describe = describe_lambda,
};
