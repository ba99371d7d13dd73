/*
 * channel-xyz.c - a channel kind written the way docs/ARCHITECTURE.md's
 * "Adding a channel" says, to prove it takes one file and one table row
 * (tests/extend/channel-xyz.sh adds the row to a copy of
 * src/notify/channels.c and links both before libsteppy.a).
 *
 * "xyz" is a made-up chat service: a message is a JSON object POSTed to the
 * room's webhook, {"room": ROOM, "kind": KIND, "text": "SUBJECT\nMESSAGE",
 * "link": URL or null}. Its configuration is the URL ("url" or "urlEnv", as
 * every webhook-like kind) and the room, a name of up to 40 lowercase
 * letters, digits and dashes.
 */
#include "notify/channel-type.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

struct xyz_config {
	struct hook_config hook; /* where to POST */
	char *room;
};

static void check_room(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (!*s || strlen(s) > 40 || !str_all_in(s, "abcdefghijklmnopqrstuvwxyz0123456789-"))
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not an xyz room (up to 40 lowercase letters, digits and -)",
		        s);
}

static const struct field_spec xyz_fields[] = {
	{ .name = "room", .types = T_STRING, .flags = F_REQUIRED, .check = check_room },
	{ .name = NULL },
};

static const struct field_spec *const xyz_tables[] = { hook_fields, xyz_fields, NULL };

static void *parse_xyz(const struct doc_node *node)
{
	struct xyz_config *c = xcalloc(1, sizeof(*c));
	hook_parse(&c->hook, node);
	c->room = node_string(node, "room");
	return c;
}

static void release_xyz(void *config)
{
	struct xyz_config *c = config;
	if (c) {
		hook_release(&c->hook);
		free(c->room);
	}
	free(c);
}

static int format_xyz(const struct channel *ch, const struct notice_text *t,
                      struct channel_request *req, char **error)
{
	const struct xyz_config *c = ch->config;
	struct strbuf text = STRBUF_INIT;
	strbuf_addstr(&text, t->title);
	if (*t->message)
		strbuf_addf(&text, "\n%s", t->message);
	json_t *j = json_pack("{s:s, s:s, s:o, s:s?}", "room", c->room, "kind", t->kind, "text",
	                      json_take_string(&text), "link", t->url);
	strbuf_release(&text);
	return hook_request(&c->hook, json_dump_compact(j), req, error);
}

const struct channel_type channel_xyz = {
	.name = "xyz",
	.what = "an xyz channel",
	.fields = xyz_tables,
	.check = hook_check,
	.parse = parse_xyz,
	.release = release_xyz,
	.format = format_xyz,
	.send = notify_http_send,
};
