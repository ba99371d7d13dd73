/*
 * run-lambda.c - Lambda steps: Invoke a function with the step's payload.
 *
 * A function error (the X-Amz-Function-Error header) fails the step with
 * the function's error payload; otherwise the response payload becomes the
 * step's output. The call is synchronous work that dies with the process,
 * so it does not reattach: after a crash the attempt counts as interrupted
 * and the step's retry policy decides (a function should be idempotent
 * when it is retried). A function given by ARN is called by name, with the
 * ARN's region and qualifier (curl 7.88 cannot sign an ARN in the path).
 */
#include "runtime/run-aws.h"

#include "plan/doc-json.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

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

static int start(struct attempt *a, const struct attempt_info *info, void **ret_state,
                 struct strbuf *err)
{
	(void)err;
	const struct doc_node *node = info->step_plan->node;
	const char *fn = step_string(node, "functionName");
	const char *qualifier = step_string(node, "qualifier");
	const char *type = step_string(node, "invocationType");
	struct aws_target t;
	char session[65];
	step_aws_target(info, "lambda", &t, session);

	/* arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] or NAME[:QUALIFIER] */
	char region[64] = "";
	const char *name = fn;
	const char *f = strstr(fn, ":function:");
	if (!strncmp(fn, "arn:", 4) && f) {
		if (aws_arn_region(fn, region, sizeof(region)))
			t.region = region;
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
	if (qualifier) {
		strbuf_addstr(&query, "Qualifier=");
		aws_uri_encode(&query, qualifier, false);
	}
	const struct doc_node *payload = doc_get(node, "payload");
	char *body = NULL;
	if (payload) {
		json_t *j = doc_to_json(payload);
		body = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(j);
	}
	char *invocation = xstrfmt("X-Amz-Invocation-Type: %s", type ? type : "RequestResponse");
	struct invocation *inv = xcalloc(1, sizeof(*inv));
	inv->a = a;
	inv->event = type && !strcmp(type, "Event");
	struct aws_request req = { .method = "POST",
		                   .path = path.buf,
		                   .query = query.len ? query.buf : NULL,
		                   .content_type = "application/json",
		                   .body = body,
		                   .len = body ? strlen(body) : 0,
		                   .headers = { invocation },
		                   .timeout_ms = INVOKE_TIMEOUT_MS };
	inv->call = aws_send(info->aws, &t, &req, invoke_done, inv);
	*ret_state = inv;
	free(invocation);
	free(body);
	strbuf_release(&path);
	strbuf_release(&query);
	attempt_started(a, json_pack("{ss}", "functionName", fn));
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

const struct step_runner lambda_runner = {
	.type = "Lambda",
	.start = start,
	.cancel = cancel,
	.detach = detach,
};
