/*
 * lambda.c - the Lambda step type: invoke an AWS Lambda function with a
 * JSON payload; a function error fails the step.
 *
 * A function error (the X-Amz-Function-Error header) fails the step with
 * the function's error payload; otherwise the response payload becomes the
 * step's output. The call is synchronous work that dies with the process,
 * so it does not reattach: after a crash the attempt counts as interrupted
 * and the step's retry policy decides (a function should be idempotent
 * when it is retried). A function given by ARN is called by name, with the
 * ARN's region and qualifier (curl 7.88 cannot sign an ARN in the path).
 */
#include "steps/aws-step.h"

#include "plan/doc-json.h"
#include "util/alloc.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
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

/* ---- configuration ------------------------------------------------------ */

/* A Lambda step, read once when the plan is built: the Invoke request. */
struct lambda_config {
	const char *function; /* functionName as written (borrowed from the plan) */
	char region[64];      /* the region of a function given by ARN, or "" */
	char *path;           /* owned: /2015-03-31/functions/NAME/invocations */
	char *query;          /* owned: Qualifier=..., or NULL */
	char *invocation;     /* owned: the X-Amz-Invocation-Type header */
	bool event;           /* asynchronous invocation */
	char *body;           /* owned: the payload as JSON text, or NULL */
};

/* A function given by ARN is called by name, with the ARN's region and
 * qualifier: arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] or
 * NAME[:QUALIFIER]. */
static void *bind_lambda(const struct doc_node *step)
{
	struct lambda_config *c = xcalloc(1, sizeof(*c));
	const char *fn = step_string(step, "functionName");
	const char *qualifier = step_string(step, "qualifier");
	const char *type = step_string(step, "invocationType");
	c->function = fn;
	const char *name = fn;
	const char *f = strstr(fn, ":function:");
	if (!strncmp(fn, "arn:", 4) && f) {
		if (!aws_arn_region(fn, c->region, sizeof(c->region)))
			c->region[0] = '\0';
		name = f + 10;
	}
	size_t name_len = strcspn(name, ":");
	if (name[name_len] == ':' && !qualifier)
		qualifier = name + name_len + 1;
	struct strbuf path = STRBUF_INIT, query = STRBUF_INIT;
	strbuf_addstr(&path, "/2015-03-31/functions/");
	char *bare = xstrndup(name, name_len);
	aws_uri_encode(&path, bare, false);
	free(bare);
	strbuf_addstr(&path, "/invocations");
	c->path = strbuf_detach(&path, NULL);
	if (qualifier) {
		strbuf_addstr(&query, "Qualifier=");
		aws_uri_encode(&query, qualifier, false);
		c->query = strbuf_detach(&query, NULL);
	}
	strbuf_release(&query);
	const struct doc_node *payload = doc_get(step, "payload");
	if (payload) {
		json_t *j = doc_to_json(payload);
		c->body = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(j);
	}
	c->invocation = xstrfmt("X-Amz-Invocation-Type: %s", type ? type : "RequestResponse");
	c->event = type && !strcmp(type, "Event");
	return c;
}

static void free_lambda(void *config)
{
	struct lambda_config *c = config;
	if (!c)
		return;
	free(c->path);
	free(c->query);
	free(c->invocation);
	free(c->body);
	free(c);
}

/* ---- the runner ------------------------------------------------------------ */

#define INVOKE_TIMEOUT_MS (16L * 60 * 1000) /* functions run up to 15 minutes */
#define OUTPUT_MAX        (64 * 1024)

struct invocation {
	struct attempt *a;
	struct aws_call *call;
	bool event; /* asynchronous invocation */
};

/* The payload as the step's output: JSON when it is, else text (capped). */
static json_t *payload_value(const char *body, size_t len)
{
	json_t *v = len ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
	if (v && len <= OUTPUT_MAX)
		return v;
	json_decref(v);
	return json_stringn_nocheck(body, len < OUTPUT_MAX ? len : OUTPUT_MAX);
}

static void invoke_done(void *arg, const struct aws_result *res)
{
	struct invocation *inv = arg;
	struct attempt *a = inv->a;
	bool event = inv->event;
	free(inv);
	if (res->error_code) {
		attempt_ended(a, false, step_aws_error("Lambda Invoke", res));
		return;
	}
	const char *fn_error = http_header(res->http, "X-Amz-Function-Error");
	json_t *details = json_object();
	if (!event)
		json_object_set_new(details, "output", payload_value(res->body, res->len));
	json_object_set_new(details, "statusCode", json_integer(res->status));
	const char *version = http_header(res->http, "X-Amz-Executed-Version");
	if (version)
		json_object_set_new(details, "executedVersion", json_string(version));
	if (fn_error) {
		json_t *out = json_object_get(details, "output");
		const char *msg = json_string_value(json_object_get(out, "errorMessage"));
		char *text = xstrfmt("the function failed (%s)%s%s", fn_error, msg ? ": " : "",
		                     msg ? msg : "");
		json_object_set_new(details, "error", json_string(text));
		free(text);
	}
	attempt_ended(a, !fn_error, details);
}

static int start(struct attempt *a, const struct attempt_info *info, const void *config,
                 void **ret_state, struct strbuf *err)
{
	const struct lambda_config *c = config;
	struct aws *aws = step_aws_client(info, err);
	if (!aws)
		return SP_EINVAL;
	struct aws_target t;
	char session[65];
	step_aws_target(info, "lambda", &t, session);
	if (*c->region)
		t.region = c->region;
	struct invocation *inv = xcalloc(1, sizeof(*inv));
	inv->a = a;
	inv->event = c->event;
	struct aws_request req = { .method = "POST",
		                   .path = c->path,
		                   .query = c->query,
		                   .content_type = "application/json",
		                   .body = c->body,
		                   .len = c->body ? strlen(c->body) : 0,
		                   .headers = { c->invocation },
		                   .timeout_ms = INVOKE_TIMEOUT_MS };
	inv->call = aws_send(aws, &t, &req, invoke_done, inv);
	*ret_state = inv;
	attempt_started(a, json_pack("{ss}", "functionName", c->function));
	return 0;
}

static void cancel(struct attempt *a, void *state)
{
	/* An invocation cannot be stopped; the step stops waiting for it. */
	struct invocation *inv = state;
	aws_cancel(inv->call);
	free(inv);
	attempt_ended(
	    a, false,
	    json_pack("{ss}", "error", "cancelled while the function ran (Lambda cannot stop it)"));
}

/* The process stops: the next one counts the attempt as interrupted. */
static void detach(void *state)
{
	struct invocation *inv = state;
	aws_cancel(inv->call);
	free(inv);
}

const struct step_type step_lambda = {
	.name = "Lambda",
	.summary = "invoke an AWS Lambda function",
	.flags = STEP_AWS | STEP_RETRYABLE,
	.fields = lambda_fields,
	.validate = validate_lambda,
	.describe = describe_lambda,
	.bind = bind_lambda,
	.free_config = free_lambda,
	.start = start,
	.cancel = cancel,
	.detach = detach,
};
