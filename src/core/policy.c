/*
 * policy.c - which steps that run local code a process accepts (see policy.h).
 */
#include "core/policy.h"

#include "plan/step-type.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>

bool started_by_inbox(const char *started_by)
{
	return started_by && !strncmp(started_by, "inbox:", 6);
}

bool exec_policy_allows(const struct exec_policy *p, const struct plan_step *step, bool from_inbox,
                        struct strbuf *why, const char **ret_where)
{
	*ret_where = "";
	if (!p || !(step->type->flags & STEP_LOCAL_CODE))
		return true;
	const char *type = step->type->name;
	if (!p->enabled) {
		strbuf_addf(why,
		            "%s steps run commands as the server's user, and this server does not "
		            "run them (its configuration's exec.enabled is not true)",
		            type);
		return false;
	}
	if (from_inbox && !p->inbox) {
		strbuf_addf(why,
		            "%s steps run commands as the server's user, and this server does not "
		            "take them from its inbox (its configuration's exec.inbox is not true)",
		            type);
		return false;
	}
	if (!p->allow)
		return true;
	const char *program =
	    step->type->program && step->config ? step->type->program(step->config) : NULL;
	if (!program) {
		strbuf_addf(why,
		            "%s steps run local code, and this server runs only the programs of "
		            "its configuration's exec.allow",
		            type);
		return false;
	}
	for (const char *const *a = p->allow; *a; a++)
		if (!strcmp(*a, program))
			return true;
	*ret_where = "/command/0";
	strbuf_addf(why, "\"%.200s\" is not one of the programs this server runs (exec.allow)",
	            program);
	return false;
}

int exec_policy_check_plan(const struct exec_policy *p, const struct plan *plan, bool from_inbox,
                           struct diag_list *dl)
{
	int r = 0;
	for (size_t i = 0; i < plan->nstages; i++) {
		for (size_t j = 0; j < plan->stages[i].nsteps; j++) {
			const struct plan_step *ps = &plan->stages[i].steps[j];
			struct strbuf why = STRBUF_INIT;
			const char *where;
			if (!exec_policy_allows(p, ps, from_inbox, &why, &where)) {
				const struct doc_node *at = ps->node;
				if (*where) {
					const struct doc_node *cmd = doc_get(ps->node, "command");
					at = cmd->u.array.items[0];
				}
				char ptr[96];
				snprintf(ptr, sizeof(ptr), "/stages/%zu/steps/%zu%s", i, j, where);
				diag_add(dl, DIAG_ERROR, plan->doc->name, at->pos, ptr, NULL, "%s",
				         why.buf);
				r = SP_EINVAL;
			}
			strbuf_release(&why);
		}
	}
	return r;
}
