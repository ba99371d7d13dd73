/*
 * channel-sns.c - the "sns" channel kind (docs/channels.md#sns): SNS
 * Publish to a topic, in the topic's region, with the default credentials or
 * a role; and the topics a Notify step names by their ARN, which get the
 * message as written. Published once: the AWS client retries throttling and
 * server errors the way the AWS SDKs do.
 */
#include "notify/notify-internal.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

#define SNS_SUBJECT_CHARS 99 /* "less than 100 characters" */

/* arn:PARTITION:sns:REGION:ACCOUNT:NAME; returns the region's length (0 if not such an ARN). */
static size_t topic_region(const char *s, const char **region)
{
	if (strncmp(s, "arn:aws", 7) != 0)
		return 0;
	const char *p = strchr(s + 4, ':');
	if (!p || strncmp(p, ":sns:", 5) != 0)
		return 0;
	p += 5;
	size_t rlen = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
	if (!rlen || p[rlen] != ':')
		return 0;
	const char *account = p + rlen + 1;
	if (strspn(account, "0123456789") != 12 || account[12] != ':')
		return 0;
	const char *name = account + 13;
	size_t nlen = strlen(name);
	if (!nlen || nlen > 256 || !str_all_in(name, ALNUM "_-."))
		return 0;
	*region = p;
	return rlen;
}

static void check_topic_arn(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s, *region;
	size_t n = strlen(s);
	if (!topic_region(s, &region))
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", s);
	else if (n > 5 && !strcmp(s + n - 5, ".fifo"))
		v_error(v, value->pos, NULL,
		        "FIFO topics are not supported (they need a message group): use a standard "
		        "topic");
}

static void check_role_arn(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	const char *p = !strncmp(s, "arn:aws", 7) ? strchr(s + 4, ':') : NULL;
	bool ok = p && !strncmp(p, ":iam::", 6);
	if (ok) {
		p += 6;
		ok = strspn(p, "0123456789") == 12 && !strncmp(p + 12, ":role/", 6) && p[18] &&
		     str_all_in(p + 18, ALNUM "+=,.@_-/");
	}
	if (!ok)
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)",
		        s);
}

static const struct field_spec sns_fields[] = {
	{ .name = "topicArn", .types = T_STRING, .flags = F_REQUIRED, .check = check_topic_arn },
	{ .name = "roleArn", .types = T_STRING, .check = check_role_arn },
	{ .name = NULL },
};

static const struct field_spec *const sns_tables[] = { sns_fields, NULL };

static void *parse_sns(const struct doc_node *node)
{
	struct sns_config *c = xcalloc(1, sizeof(*c));
	c->topic_arn = node_string(node, "topicArn");
	const char *region;
	size_t n = topic_region(c->topic_arn, &region);
	c->region = xstrndup(region, n);
	c->role_arn = node_string(node, "roleArn");
	return c;
}

static void release_sns(void *config)
{
	struct sns_config *c = config;
	if (!c)
		return;
	free(c->topic_arn);
	free(c->region);
	free(c->role_arn);
	free(c);
}

void format_sns_subject(const struct notice_text *t, struct strbuf *out)
{
	add_chars(out, t->title, SNS_SUBJECT_CHARS);
}

/* The request's data: Publish's parameters but the message (the request's body). */
struct publish {
	char *topic_arn, *region, *role_arn;
	char *subject; /* NULL: none */
};

static void publish_free(void *p)
{
	struct publish *pb = p;
	free(pb->topic_arn);
	free(pb->region);
	free(pb->role_arn);
	free(pb->subject);
	free(pb);
}

static int format_sns(const struct channel *ch, const struct notice_text *t,
                      struct channel_request *req, char **error)
{
	(void)error;
	const struct sns_config *c = ch->config;
	struct publish *pb = xcalloc(1, sizeof(*pb));
	req->data = pb;
	req->data_free = publish_free;
	pb->topic_arn = xstrdup(c->topic_arn);
	pb->region = c->region ? xstrdup(c->region) : NULL;
	pb->role_arn = c->role_arn ? xstrdup(c->role_arn) : NULL;
	struct strbuf sb = STRBUF_INIT;
	if (c->plain) {
		pb->subject = t->subject ? xstrdup(t->subject) : NULL;
		strbuf_addstr(&sb, t->message);
	} else {
		format_sns_subject(t, &sb);
		pb->subject = strbuf_detach(&sb, NULL);
		format_text(t, "\n", &sb);
	}
	if (!sb.len)
		strbuf_addstr(&sb, t->title); /* SNS refuses an empty message */
	req->body = strbuf_detach(&sb, &req->len);
	return 0;
}

static void published(struct notify_delivery *d, const struct aws_result *res)
{
	if (!res->error_code) {
		char *id = aws_xml_text(res, "PublishResult/MessageId");
		notify_set_receipt(d, id ? id : "");
		free(id);
		notify_attempt_done(d, true, NULL, false, 0);
		return;
	}
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb,
	            "SNS Publish to %s: ", ((struct publish *)notify_request(d)->data)->topic_arn);
	aws_result_error(res, &sb);
	notify_attempt_done(d, false, strbuf_detach(&sb, NULL), false, 0);
}

static void send_sns(struct notify_delivery *d)
{
	const struct channel_request *req = notify_request(d);
	const struct publish *pb = req->data;
	json_t *params = json_pack("{s:s, s:s}", "TopicArn", pb->topic_arn, "Message", req->body);
	if (pb->subject)
		json_object_set_new(params, "Subject", json_string(pb->subject));
	struct aws_target t = { .service = "sns", .region = pb->region, .role_arn = pb->role_arn };
	notify_aws_query(d, &t, "Publish", "2010-03-31", params, published);
}

const struct channel_type channel_sns = {
	.name = "sns",
	.what = "an sns channel",
	.flags = CHANNEL_ONE_ATTEMPT,
	.fields = sns_tables,
	.parse = parse_sns,
	.release = release_sns,
	.format = format_sns,
	.send = send_sns,
};

struct channel *sns_topic_channel_new(const char *arn)
{
	struct sns_config *c = xcalloc(1, sizeof(*c));
	char region[32];
	c->topic_arn = xstrdup(arn);
	aws_arn_region(arn, region, sizeof(region)); /* "" if none */
	c->region = *region ? xstrdup(region) : NULL;
	c->plain = true;
	struct channel *ch = channel_new(arn, &channel_sns, c);
	free(ch->what); /* its errors say "SNS Publish to ARN" already */
	ch->what = NULL;
	return ch;
}
