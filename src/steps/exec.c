/*
 * exec.c - the Exec step type: run a local command (an argv list, no
 * shell); exit status 0 is success.
 */
#include "plan/step-type.h"

#include "util/strmap.h"

#include <stdbool.h>
#include <string.h>

static void check_command(struct vctx *v, const struct doc_node *value)
{
	for (size_t i = 0; i < value->u.array.len; i++) {
		const struct doc_node *arg = value->u.array.items[i];
		size_t saved = v_push_index(v, i);
		if (arg->kind != DOC_STRING) {
			struct strbuf found = STRBUF_INIT;
			describe_found(&found, arg);
			v_error(v, arg->pos, NULL,
			        "command arguments must be strings, found %s (quote it)",
			        found.buf);
			strbuf_release(&found);
		} else if (memchr(arg->u.string.s, '\0', arg->u.string.len)) {
			v_error(v, arg->pos, NULL,
			        "command arguments may not contain NUL characters");
		} else if (i == 0 && arg->u.string.len == 0) {
			v_error(v, arg->pos, NULL, "the program to run (the first item) is empty");
		}
		v_pop(v, saved);
	}
}

static void check_env(struct vctx *v, const struct doc_node *value)
{
	struct strmap seen = STRMAP_INIT;
	for (size_t i = 0; i < value->u.object.len; i++) {
		const struct doc_member *m = &value->u.object.members[i];
		size_t saved = v_push(v, m->key);
		if (!str_is_ident(m->key)) {
			v_error(v, m->key_pos, NULL,
			        "\"%s\" is not a valid environment variable name (letters, digits "
			        "and _, not starting with a digit)",
			        m->key);
		} else if (v_first_seen(&seen, m->key, m)) {
			v_error(v, m->key_pos, NULL, "\"%s\" is given twice", m->key);
		} else if (m->value->kind != DOC_STRING) {
			struct strbuf found = STRBUF_INIT;
			describe_found(&found, m->value);
			v_error(v, m->value->pos, NULL,
			        "environment values must be strings, found %s (quote it)",
			        found.buf);
			strbuf_release(&found);
		} else if (memchr(m->value->u.string.s, '\0', m->value->u.string.len)) {
			v_error(v, m->value->pos, NULL,
			        "environment values may not contain NUL characters");
		}
		v_pop(v, saved);
	}
	strmap_release(&seen);
}

static const struct field_spec exec_fields[] = {
	{ .name = "command",
	  .types = T_ARRAY,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .check = check_command },
	{ .name = "env", .types = T_OBJECT, .check = check_env },
	{ .name = "cwd", .types = T_STRING, .flags = F_NONEMPTY },
	{ .name = NULL },
};

/* Appends arg quoted as a shell word if it needs quoting: '...', or $'...'
 * when it holds control characters, so the command stays on one line. */
static void shell_quote(struct strbuf *out, const char *arg)
{
	if (*arg && str_all_in(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	                            "-_./=:,+@%")) {
		strbuf_addstr(out, arg);
		return;
	}
	bool control = false;
	for (const char *p = arg; *p && !control; p++)
		control = (unsigned char)*p < 0x20 || *p == 0x7F;
	if (control) {
		strbuf_addstr(out, "$'");
		for (const char *p = arg; *p; p++) {
			unsigned char c = (unsigned char)*p;
			if (c == '\n')
				strbuf_addstr(out, "\\n");
			else if (c == '\t')
				strbuf_addstr(out, "\\t");
			else if (c == '\r')
				strbuf_addstr(out, "\\r");
			else if (c < 0x20 || c == 0x7F)
				strbuf_addf(out, "\\x%02x", c);
			else if (c == '\'' || c == '\\')
				strbuf_addf(out, "\\%c", c);
			else
				strbuf_addch(out, (char)c);
		}
		strbuf_addch(out, '\'');
		return;
	}
	strbuf_addch(out, '\'');
	for (const char *p = arg; *p; p++) {
		if (*p == '\'')
			strbuf_addstr(out, "'\\''");
		else
			strbuf_addch(out, *p);
	}
	strbuf_addch(out, '\'');
}

static void describe_exec(const struct doc_node *step, struct strbuf *out)
{
	const struct doc_node *cmd = doc_get(step, "command");
	struct strbuf line = STRBUF_INIT;
	for (size_t i = 0; i < cmd->u.array.len; i++) {
		if (i)
			strbuf_addch(&line, ' ');
		shell_quote(&line, cmd->u.array.items[i]->u.string.s);
	}
	describe_line(out, "runs", "%s", line.buf);
	strbuf_release(&line);
	const char *cwd = step_string(step, "cwd");
	if (cwd)
		describe_line(out, "in", "%s", cwd);
	const struct doc_node *env = doc_get(step, "env");
	for (size_t i = 0; env && i < env->u.object.len; i++)
		describe_line(out, i ? "" : "environment", "%s=%s", env->u.object.members[i].key,
		              env->u.object.members[i].value->u.string.s);
}

/* The program a step runs: its command's first word (exec.allow names it). */
static const char *exec_program(const struct doc_node *step)
{
	const struct doc_node *cmd = doc_get(step, "command");
	if (!cmd || cmd->kind != DOC_ARRAY || !cmd->u.array.len ||
	    cmd->u.array.items[0]->kind != DOC_STRING)
		return NULL;
	return cmd->u.array.items[0]->u.string.s;
}

/* What a running command waits for ("its work to stop" while it is stopped). */
static void exec_waiting_for(const struct doc_node *step, const struct step_view *view,
                             struct strbuf *out)
{
	(void)step;
	if (!view->cancelling)
		strbuf_addstr(out, "its command to end");
}

const struct step_type step_exec = {
	.name = "Exec",
	.summary = "run a local command; exit status 0 is success",
	.flags = STEP_RETRYABLE | STEP_LOCAL_CODE,
	.fields = exec_fields,
	.describe = describe_exec,
	.program = exec_program,
	.waiting_for = exec_waiting_for,
};
