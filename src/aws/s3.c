/*
 * s3.c - Amazon S3 objects (see s3.h). Path-style addressing, so that the
 * same code works against AWS and any endpoint override.
 */
#include "aws/s3.h"

#include "aws/aws-internal.h"
#include "util/alloc.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

bool s3_is_url(const char *s)
{
	return !strncmp(s, "s3://", 5);
}

int s3_parse_url(const char *url, char **ret_bucket, char **ret_key, struct strbuf *err)
{
	const char *b = url + 5;
	const char *slash = strchr(b, '/');
	if (!s3_is_url(url) || !slash || slash == b || !slash[1]) {
		strbuf_addf(err, "%s is not an S3 object address (s3://BUCKET/KEY)", url);
		return -1;
	}
	*ret_bucket = xstrndup(b, (size_t)(slash - b));
	*ret_key = xstrdup(slash + 1);
	return 0;
}

void s3_object_path(struct strbuf *out, const char *bucket, const char *key)
{
	strbuf_addch(out, '/');
	aws_uri_encode(out, bucket, false);
	strbuf_addch(out, '/');
	aws_uri_encode(out, key, true);
}

int s3_get_url(const char *url, size_t max, char **ret_body, size_t *ret_len, struct strbuf *err)
{
	char *bucket, *key;
	if (s3_parse_url(url, &bucket, &key, err) < 0)
		return SP_EIO;
	struct strbuf path = STRBUF_INIT;
	s3_object_path(&path, bucket, key);
	struct aws_target t = { .service = "s3" };
	struct aws_request req = { .method = "GET", .path = path.buf, .timeout_ms = 60000 };
	long status;
	struct strbuf why = STRBUF_INIT;
	int r = aws_call_sync(&t, &req, &status, ret_body, ret_len, &why);
	if (r < 0) {
		strbuf_addf(err, "cannot read %s: %s", url, why.buf);
		r = SP_EIO;
	} else if (*ret_len > max) {
		free(*ret_body);
		*ret_body = NULL;
		strbuf_addf(err, "%s is larger than %zu bytes", url, max);
		r = SP_ETOOBIG;
	}
	strbuf_release(&why);
	strbuf_release(&path);
	free(bucket);
	free(key);
	return r;
}

int s3_list(const char *bucket, const char *prefix,
            void (*fn)(void *arg, const char *key, const char *etag), void *arg, struct strbuf *err)
{
	struct strbuf path = STRBUF_INIT, query = STRBUF_INIT;
	strbuf_addch(&path, '/');
	aws_uri_encode(&path, bucket, false);
	/* sorted by key, every pair k=v, values encoded (PITFALLS) */
	strbuf_addstr(&query, "list-type=2&max-keys=1000&prefix=");
	aws_uri_encode(&query, prefix ? prefix : "", false);
	struct aws_target t = { .service = "s3" };
	struct aws_request req = {
		.method = "GET", .path = path.buf, .query = query.buf, .timeout_ms = 30000
	};
	long status;
	char *body = NULL;
	size_t len = 0;
	int r = aws_call_sync(&t, &req, &status, &body, &len, err);
	if (r == 0 && xml_each_pair(body, len, "Contents", "Key", "ETag", fn, arg) < 0) {
		strbuf_addstr(err, "S3 ListObjectsV2 answered something that is not XML");
		r = -1;
	}
	free(body);
	strbuf_release(&path);
	strbuf_release(&query);
	return r < 0 ? SP_EIO : 0;
}

int s3_put(const char *bucket, const char *key, const char *content_type, const char *data,
           size_t len, struct strbuf *err)
{
	struct strbuf path = STRBUF_INIT;
	s3_object_path(&path, bucket, key);
	struct aws_target t = { .service = "s3" };
	struct aws_request req = { .method = "PUT",
		                   .path = path.buf,
		                   .content_type = content_type,
		                   .body = data,
		                   .len = len,
		                   .timeout_ms = 30000 };
	long status;
	char *body = NULL;
	size_t blen = 0;
	int r = aws_call_sync(&t, &req, &status, &body, &blen, err);
	free(body);
	strbuf_release(&path);
	return r < 0 ? SP_EIO : 0;
}
