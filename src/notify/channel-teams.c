/*
 * channel-teams.c - the "teams" channel kind (docs/channels.md#teams): an
 * Adaptive Card (1.4) posted to a Microsoft Teams webhook, in the envelope
 * both Teams webhooks take (Workflows, and the retiring Office 365
 * connectors).
 */
#include "notify/notify-internal.h"

#include <string.h>

#define TEAMS_MESSAGE_CHARS 10000

/* ---- Microsoft Teams ------------------------------------------------------------------------- */

/*
 * A RichTextBlock of TextRuns (label bold, then text). Teams reads Markdown in
 * a TextBlock's text and in a FactSet's titles and values, so a message or a
 * step name such as "[Click to approve](https://elsewhere.example)" would
 * become a live link there; a TextRun's text is never read as Markdown
 * (Adaptive Cards 1.2+), so every text of a notice goes in TextRuns.
 */
static json_t *teams_text(const char *label, json_t *text, const char *size, bool spaced)
{
	json_t *inlines = json_array();
	if (label)
		json_array_append_new(inlines, json_pack("{s:s, s:s+, s:s}", "type", "TextRun",
		                                         "text", label, ": ", "weight", "Bolder"));
	json_t *run = json_pack("{s:s, s:o}", "type", "TextRun", "text", text);
	if (size)
		json_object_update_new(run,
		                       json_pack("{s:s, s:s}", "size", size, "weight", "Bolder"));
	json_array_append_new(inlines, run);
	json_t *block = json_pack("{s:s, s:o}", "type", "RichTextBlock", "inlines", inlines);
	if (!spaced)
		json_object_set_new(block, "spacing", json_string("None"));
	return block;
}

/*
 * An Adaptive Card (1.4) in the message envelope that both Teams webhooks
 * take: the Workflows app's "When a Teams webhook request is received" and
 * the retiring Office 365 connectors' incoming webhooks.
 */
char *format_teams(const struct notice_text *t)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *body = json_array();
	json_array_append_new(body, teams_text(NULL, json_string(t->title), "Large", true));
	if (*t->message) {
		add_chars(&sb, t->message, TEAMS_MESSAGE_CHARS);
		json_array_append_new(body, teams_text(NULL, json_take_string(&sb), NULL, true));
	}
	const char *labels[5], *values[5];
	size_t n = notice_facts(t, labels, values);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(body,
		                      teams_text(labels[i], json_string(values[i]), NULL, !i));
	json_t *card = json_pack("{s:s, s:s, s:s, s:o}", "$schema",
	                         "http://adaptivecards.io/schemas/adaptive-card.json", "type",
	                         "AdaptiveCard", "version", "1.4", "body", body);
	if (t->url)
		json_object_set_new(card, "actions",
		                    json_pack("[{s:s, s:s, s:s}]", "type", "Action.OpenUrl",
		                              "title", notice_link_label(t), "url", t->url));
	strbuf_release(&sb);
	return json_dump_compact(
	    json_pack("{s:s, s:[{s:s, s:n, s:o}]}", "type", "message", "attachments", "contentType",
	              "application/vnd.microsoft.card.adaptive", "contentUrl", "content", card));
}

static const struct field_spec *const teams_tables[] = { hook_fields, NULL };

static int format_teams_request(const struct channel *c, const struct notice_text *t,
                                struct channel_request *req, char **error)
{
	return hook_request(c->config, format_teams(t), req, error);
}

const struct channel_type channel_teams = {
	.name = "teams",
	.what = "a teams channel",
	.fields = teams_tables,
	.check = hook_check,
	.parse = hook_config_new,
	.release = hook_config_free,
	.format = format_teams_request,
	.send = notify_http_send,
};
