/*
 * s3.h - reading and listing objects of Amazon S3 (plans kept in a bucket).
 */
#ifndef STEPPY_AWS_S3_H
#define STEPPY_AWS_S3_H

#include "util/strbuf.h"

#include <stdbool.h>
#include <stddef.h>

/* True if s is an s3://BUCKET/KEY address. */
bool s3_is_url(const char *s);

/* Splits s3://BUCKET/KEY; returns 0, or -1 with the reason in err. */
int s3_parse_url(const char *url, char **ret_bucket, char **ret_key, struct strbuf *err);

/* The request path for an object, path-style and URI-encoded: /BUCKET/KEY. */
void s3_object_path(struct strbuf *out, const char *bucket, const char *key);

/*
 * Reads an object (GetObject, default credentials and region; blocking, for
 * commands). Returns 0 with the body (caller frees), SP_ETOOBIG past max
 * bytes, or SP_EIO with the reason in err.
 */
int s3_get_url(const char *url, size_t max, char **ret_body, size_t *ret_len, struct strbuf *err);

/* Lists up to 1000 objects under prefix (ListObjectsV2; blocking): fn gets
 * each key and its ETag. Returns 0, or SP_EIO with the reason in err. */
int s3_list(const char *bucket, const char *prefix,
            void (*fn)(void *arg, const char *key, const char *etag), void *arg,
            struct strbuf *err);

/* Writes an object (PutObject; blocking). Returns 0 or SP_EIO. */
int s3_put(const char *bucket, const char *key, const char *content_type, const char *data,
           size_t len, struct strbuf *err);

#endif
