/*
 * cmd-graph.c - `steppy graph`: a plan as a Mermaid flowchart (default) or a
 * Graphviz DOT graph. Stages are boxes in order; their steps sit side by
 * side inside, since they start together.
 */
#include "cli/cli.h"

#include "plan/validate.h"
#include "util/alloc.h"
#include "util/strbuf.h"

#include <stdlib.h>
#include <string.h>

const char graph_help[] =
    "usage: steppy graph [--dot] [--var NAME=VALUE]... PLAN\n"
    "\n"
    "Prints the plan as a Mermaid flowchart (paste it into Markdown on GitHub or\n"
    "GitLab), or with --dot as Graphviz DOT (steppy graph --dot plan.json | dot -Tsvg).\n"
    "Variables without a value are drawn as ${var.NAME}: --var is only needed\n"
    "to see values in names.\n"
    "\n"
    "options:\n"
    "  --dot              Graphviz DOT instead of Mermaid\n"
    "  --var NAME=VALUE   a value for a plan variable (repeatable)\n"
    "  --var-file NAME=FILE\n"
    "                     the value read from FILE (kept out of ps)\n"
    "  -h, --help         show this help\n"
    "\n"
    "exit status: 0 printed, 1 the plan is invalid, 2 usage error or unreadable plan\n";

/* Mermaid labels sit in double quotes; entity codes keep them intact. */
static void mermaid_label(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '"':
			strbuf_addstr(out, "#quot;");
			break;
		case '#':
			strbuf_addstr(out, "#35;");
			break;
		case '<':
			strbuf_addstr(out, "#lt;");
			break;
		case '>':
			strbuf_addstr(out, "#gt;");
			break;
		default:
			strbuf_addch(out, (unsigned char)*s < 0x20 ? ' ' : *s);
		}
	}
}

static void dot_label(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			strbuf_addch(out, '\\');
		strbuf_addch(out, (unsigned char)*s < 0x20 ? ' ' : *s);
	}
}

static void print_mermaid(const struct plan *plan)
{
	struct strbuf out = STRBUF_INIT;
	strbuf_addstr(&out, "flowchart TD\n    start([\"start\"])\n");
	for (size_t i = 0; i < plan->nstages; i++) {
		const struct plan_stage *stage = &plan->stages[i];
		strbuf_addf(&out, "    subgraph s%zu[\"Stage %zu: ", i + 1, i + 1);
		mermaid_label(&out, stage->name);
		strbuf_addstr(&out, "\"]\n        direction LR\n");
		for (size_t j = 0; j < stage->nsteps; j++) {
			strbuf_addf(&out, "        s%zu_%zu[\"", i + 1, j + 1);
			mermaid_label(&out, stage->steps[j].type->name);
			strbuf_addstr(&out, ": ");
			mermaid_label(&out, stage->steps[j].name);
			strbuf_addstr(&out, "\"]\n");
		}
		strbuf_addstr(&out, "    end\n");
	}
	strbuf_addstr(&out, "    finish([\"end\"])\n    start --> s1\n");
	for (size_t i = 1; i < plan->nstages; i++)
		strbuf_addf(&out, "    s%zu --> s%zu\n", i, i + 1);
	strbuf_addf(&out, "    s%zu --> finish\n", plan->nstages);
	fputs(out.buf, stdout);
	strbuf_release(&out);
}

static void print_dot(const struct plan *plan)
{
	struct strbuf out = STRBUF_INIT;
	strbuf_addstr(&out, "digraph release {\n"
	                    "    compound=true;\n"
	                    "    node [shape=box, style=rounded];\n"
	                    "    start [shape=oval];\n"
	                    "    finish [shape=oval, label=\"end\"];\n");
	for (size_t i = 0; i < plan->nstages; i++) {
		const struct plan_stage *stage = &plan->stages[i];
		strbuf_addf(&out, "    subgraph cluster_%zu {\n        label=\"Stage %zu: ", i + 1,
		            i + 1);
		dot_label(&out, stage->name);
		strbuf_addstr(&out, "\";\n");
		for (size_t j = 0; j < stage->nsteps; j++) {
			strbuf_addf(&out, "        s%zu_%zu [label=\"", i + 1, j + 1);
			dot_label(&out, stage->steps[j].type->name);
			strbuf_addstr(&out, "\\n");
			dot_label(&out, stage->steps[j].name);
			strbuf_addstr(&out, "\"];\n");
		}
		strbuf_addstr(&out, "    }\n");
	}
	strbuf_addstr(&out, "    start -> s1_1 [lhead=cluster_1];\n");
	for (size_t i = 1; i < plan->nstages; i++)
		strbuf_addf(&out, "    s%zu_1 -> s%zu_1 [ltail=cluster_%zu, lhead=cluster_%zu];\n",
		            i, i + 1, i, i + 1);
	strbuf_addf(&out, "    s%zu_1 -> finish [ltail=cluster_%zu];\n}\n", plan->nstages,
	            plan->nstages);
	fputs(out.buf, stdout);
	strbuf_release(&out);
}

/*
 * Loads path for drawing. A graph shows stage and step names and types, so
 * a variable without a value (no --var, no default) keeps its reference
 * text ${var.NAME} instead of stopping the command; the substituted values
 * are then not checked (there are none to check). Returns an exit code.
 */
static int load_for_graph(const char *path, const struct var_value *vals, size_t nvals,
                          struct plan **ret_plan)
{
	struct diag_list dl = DIAG_LIST_INIT;
	struct doc *doc = NULL;
	int code = EXIT_OK;
	/* Any problem with the document itself: the usual loading reports it. */
	if (cli_load_doc(path, &doc, &dl) < 0 || plan_validate(doc, false, &dl) < 0)
		code = -1;
	const struct doc_node *decls = code == EXIT_OK ? doc_get(doc->root, "variables") : NULL;
	size_t ndecls = decls && decls->kind == DOC_OBJECT ? decls->u.object.len : 0;
	struct var_value *all = xcalloc(nvals + ndecls + 1, sizeof(*all));
	char **texts = xcalloc(ndecls + 1, sizeof(*texts));
	size_t nall = nvals, ntexts = 0;
	memcpy(all, vals, nvals * sizeof(*vals));
	for (size_t i = 0; i < ndecls; i++) {
		const struct doc_member *m = &decls->u.object.members[i];
		bool given = step_string(m->value, "default") != NULL;
		for (size_t k = 0; k < nvals && !given; k++)
			given = !strcmp(vals[k].name, m->key);
		if (given)
			continue;
		texts[ntexts] = xstrfmt("${var.%s}", m->key);
		all[nall++] = (struct var_value){ m->key, texts[ntexts++] };
	}
	if (code != EXIT_OK || !ntexts) {
		code = cli_load_plan(path, vals, nvals, ret_plan);
	} else {
		struct doc *bound = NULL;
		struct strbuf err = STRBUF_INIT;
		if (plan_bind(doc, all, nall, &bound, &err) < 0)
			code = usage_error("%s", err.buf);
		else
			*ret_plan = plan_build(bound);
		strbuf_release(&err);
	}
	for (size_t i = 0; i < ntexts; i++)
		free(texts[i]);
	free(texts);
	free(all);
	doc_free(doc);
	diag_list_release(&dl);
	return code;
}

const struct option graph_options[] = {
	{ "dot", no_argument, NULL, 'd' },
	{ NULL, 0, NULL, 0 },
};

int cmd_graph(int argc, char **argv, const struct cli_ctx *ctx)
{
	bool dot = false;
	for (size_t i = 0; i < ctx->nopts; i++)
		dot |= ctx->opts[i].id == 'd';
	if (argc != 2)
		return usage_error("graph takes exactly one plan file (see steppy graph --help)");
	struct plan *plan = NULL;
	int status = load_for_graph(argv[1], ctx->vars, ctx->nvars, &plan);
	if (status == EXIT_OK)
		(dot ? print_dot : print_mermaid)(plan);
	plan_free(plan);
	return status;
}
