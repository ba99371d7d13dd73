/*
 * aws-internal.h - what the AWS client's files share: the client itself
 * and credentials (creds.c), which the client needs for every call and
 * which in turn make calls (STS) and plain requests (container, IMDS).
 */
#ifndef STEPPY_AWS_INTERNAL_H
#define STEPPY_AWS_INTERNAL_H

#include "aws/aws.h"
#include "aws/ini.h"

struct aws_creds {
	char *access_key_id, *secret_access_key, *session_token; /* token may be NULL */
	int64_t expires_ms;                                      /* 0: does not expire */
	char *source; /* where they came from, for error messages */
};

struct cred_entry;

struct aws {
	uv_loop_t *loop;
	struct http *http;
	struct cred_entry *creds;
	struct ini config, credentials;
	bool files_loaded;
	char *profile;         /* AWS_PROFILE, or "default" */
	bool profile_explicit; /* AWS_PROFILE was set */
	double retry_tokens;   /* the standard mode's retry quota */
	uint64_t ncalls, nerrors;
	struct aws_call *calls;
};

/* Credentials are ready (creds borrowed, valid during the call) or failed. */
typedef void (*creds_fn)(void *arg, const struct aws_creds *creds, const char *error);

struct creds_wait;
/* Gets the credentials for t (its role_arn, or the default chain). fn may be
 * called before this returns when they are cached. Returns a handle to
 * cancel the wait, or NULL if fn was already called. */
struct creds_wait *creds_get(struct aws *aws, const struct aws_target *t, creds_fn fn, void *arg);
void creds_wait_cancel(struct creds_wait *w);
/* Forgets cached credentials of t (after ExpiredToken). */
void creds_forget(struct aws *aws, const struct aws_target *t);
void creds_release_all(struct aws *aws);

void aws_creds_release(struct aws_creds *c);
void aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src);

/* aws_send() with explicit credentials (for STS AssumeRole). */
struct aws_call *aws_send_with(struct aws *aws, const struct aws_target *t,
                               const struct aws_request *req, const struct aws_creds *creds,
                               aws_done_fn done, void *arg);

/* A value of the active profile, or of profile name: the credentials file
 * first, then the config file. */
const char *aws_profile_value(struct aws *aws, const char *profile, const char *key);
bool aws_profile_exists(struct aws *aws, const char *profile);

/* The text of the first element with that local name under the document, or NULL. */
char *xml_text(const char *body, size_t len, const char *path);
/* Calls fn with the texts of children a and b of each element parent
 * directly under the root (S3 listings: Contents/Key and ETag). Returns 0,
 * or -1 if the XML is bad. */
int xml_each_pair(const char *body, size_t len, const char *parent, const char *a, const char *b,
                  void (*fn)(void *arg, const char *a_text, const char *b_text), void *arg);

#endif
