/*
 * run-notify.c - Notify steps on the local channels: the terminal (the
 * runtime's observer shows the message from the StepSucceeded event) and a
 * log file. Other channels (SNS, chat, email) come with the server's
 * configuration; naming one here fails the step with a clear message.
 */
#include "engine/runner.h"

#include "util/error.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int notify_start(struct attempt *a, const struct attempt_info *info, void **ret_state,
                        struct strbuf *err)
{
	*ret_state = NULL;
	const struct doc_node *node = info->step_plan->node;
	const struct doc_node *channels = doc_get(node, "channels");
	bool to_terminal = !channels, to_log = !channels;
	for (size_t i = 0; channels && i < channels->u.array.len; i++) {
		const char *c = channels->u.array.items[i]->u.string.s;
		to_terminal |= !strcmp(c, "terminal");
		to_log |= !strcmp(c, "log");
		if (strcmp(c, "terminal") != 0 && strcmp(c, "log") != 0) {
			strbuf_addf(err,
			            "channel \"%s\" is not configured (this steppy knows the local "
			            "channels \"terminal\" and \"log\")",
			            c);
			return SP_EINVAL;
		}
	}
	const char *subject = step_string(node, "subject");
	const char *message = step_string(node, "message");
	attempt_started(a, json_object());

	struct strbuf line = STRBUF_INIT;
	rfc3339_format(&line, wall_clock_ms());
	strbuf_addf(&line, " %s %s: ", info->execution_id, info->step_plan->name);
	if (subject)
		strbuf_addf(&line, "[%s] ", subject);
	for (const char *p = message; *p; p++)
		strbuf_addch(&line, *p == '\n' ? ' ' : *p);
	strbuf_addch(&line, '\n');
	const char *log = to_log ? info->notify_log : NULL;
	int fd = log ? open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (log && (fd < 0 || write_all(fd, line.buf, line.len) < 0)) {
		strbuf_addf(err, "cannot write the notification log %s: %s", info->notify_log,
		            strerror(errno));
		if (fd >= 0)
			close(fd);
		strbuf_release(&line);
		attempt_ended(a, false, json_pack("{ss}", "error", err->buf));
		return 0;
	}
	if (fd >= 0)
		close(fd);
	strbuf_release(&line);
	json_t *used = json_array();
	if (to_terminal)
		json_array_append_new(used, json_string("terminal"));
	if (log)
		json_array_append_new(used, json_string("log"));
	attempt_ended(
	    a, true,
	    json_pack("{so ss? ss}", "channels", used, "subject", subject, "message", message));
	return 0;
}

static void notify_cancel(struct attempt *a, void *state)
{
	(void)a;
	(void)state; /* over as soon as it starts */
}

const struct step_runner notify_runner = {
	.type = "Notify",
	.start = notify_start,
	.cancel = notify_cancel,
	.reap = NULL,
};
