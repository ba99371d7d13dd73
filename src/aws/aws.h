/*
 * aws.h - calling AWS services the way the AWS SDKs do: SigV4-signed HTTPS
 * (signed by libcurl), credentials from the standard chain, one role per
 * call when asked (STS AssumeRole, cached), endpoint overrides, and retries
 * with capped exponential back-off and jitter in the SDKs' standard mode.
 *
 * Everything is asynchronous on one libuv loop: a call returns at once and
 * its callback runs later from the loop (never from inside aws_send()).
 *
 * Environment honoured: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN, AWS_PROFILE, AWS_CONFIG_FILE,
 * AWS_SHARED_CREDENTIALS_FILE, AWS_REGION, AWS_DEFAULT_REGION,
 * AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>,
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, AWS_MAX_ATTEMPTS,
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI,
 * AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE), AWS_EC2_METADATA_DISABLED,
 * AWS_EC2_METADATA_SERVICE_ENDPOINT.
 */
#ifndef STEPPY_AWS_AWS_H
#define STEPPY_AWS_AWS_H

#include "http/http.h"
#include "util/strbuf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct aws;
struct aws_call;

/* Who calls what, where. Strings are copied by aws_send(). */
struct aws_target {
	const char *service;      /* signing name: "codebuild", "sts", "s3" ... */
	const char *region;       /* NULL: the default region */
	const char *role_arn;     /* NULL: the default credentials */
	const char *external_id;  /* for role_arn, or NULL */
	const char *session_name; /* for role_arn; NULL: "steppy" */
};

struct aws_request {
	const char *method;       /* "GET", "POST" ... */
	const char *path;         /* URI-encoded, starting with / */
	const char *query;        /* URI-encoded k=v pairs sorted by key, or NULL */
	const char *content_type; /* or NULL */
	const char *amz_target;   /* X-Amz-Target, or NULL */
	const char *body;
	size_t len;
	const char *headers[4]; /* further "Name: value" lines, NULL-terminated */
	long timeout_ms;        /* whole request; 0: 60 s */
	int max_attempts;       /* 0: AWS_MAX_ATTEMPTS, else 3 */
	bool unsigned_payload;  /* S3: sign x-amz-content-sha256 (always for s3) */
};

struct aws_result {
	long status;      /* HTTP status, 0 if none came */
	const char *body; /* the response body (NUL-terminated) */
	size_t len;
	const struct http_response *http;
	const char *error_code;    /* NULL on success (2xx) */
	const char *error_message; /* with error_code */
	int attempts;              /* requests sent */
};

typedef void (*aws_done_fn)(void *arg, const struct aws_result *res);

struct aws *aws_new(uv_loop_t *loop);
/* Abandons calls in flight without calling back. Accepts NULL. */
void aws_free(struct aws *aws);

/* Sends a request; done is called exactly once unless the call is cancelled. */
struct aws_call *aws_send(struct aws *aws, const struct aws_target *t,
                          const struct aws_request *req, aws_done_fn done, void *arg);
/* A JSON 1.1 call (CodeBuild, CodePipeline): input is taken. */
struct aws_call *aws_json_call(struct aws *aws, const struct aws_target *t, const char *prefix,
                               const char *op, json_t *input, aws_done_fn done, void *arg);
/* A query-protocol call (SNS, STS): params is an object of strings, taken. */
struct aws_call *aws_query_call(struct aws *aws, const struct aws_target *t, const char *action,
                                const char *version, json_t *params, aws_done_fn done, void *arg);
void aws_cancel(struct aws_call *c);

/* The parsed JSON body of a result, or NULL; caller decrefs. */
json_t *aws_result_json(const struct aws_result *res);

/* The text of an element of an XML result ("A/B/C"), or NULL; caller frees. */
char *aws_xml_text(const struct aws_result *res, const char *path);

/* "Code: message" for a failed result. */
void aws_result_error(const struct aws_result *res, struct strbuf *out);

/* True for errors worth trying again later: throttling, 5xx, broken
 * connections, credentials that could not be fetched for a passing reason. */
bool aws_error_retryable(const char *code, long status);

/* The region calls go to when the target names none, or NULL if unknown. */
const char *aws_default_region(struct aws *aws);

/* The endpoint URL for service in region (no trailing slash). */
void aws_endpoint(struct aws *aws, const char *service, const char *region, struct strbuf *out);

/* The region of an ARN (arn:PARTITION:SERVICE:REGION:...) copied into buf,
 * or NULL if it has none or it does not fit. */
const char *aws_arn_region(const char *arn, char *buf, size_t size);

/* Appends s with AWS's URI encoding; keeps '/' when keep_slash. */
void aws_uri_encode(struct strbuf *out, const char *s, bool keep_slash);

/* Calls made and failed (after retries), for metrics. */
void aws_counts(const struct aws *aws, uint64_t *calls, uint64_t *errors);

/* Runs a loop until the call completes: for one-off calls outside the engine. */
int aws_call_sync(const struct aws_target *t, const struct aws_request *req, long *ret_status,
                  char **ret_body, size_t *ret_len, struct strbuf *err);

#endif
