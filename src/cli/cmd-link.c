/*
 * cmd-link.c - `steppy link`: ask a server for a new approval link of a
 * waiting Human step (POST /api/v1/executions/ID/steps/S/T/link), when the
 * first one reached nobody. The old link stops working; the new one goes to
 * the step's channels again and is printed.
 */
#include "cli/cli.h"

#include "cli/remote.h"
#include "util/alloc.h"
#include "util/strbuf.h"
#include "util/suggest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char link_help[] =
    "usage: steppy link --server URL [--token-file FILE] EXECUTION STEP\n"
    "\n"
    "Asks the steppy server that runs a release for a new approval link of its\n"
    "waiting Human step STEP (its name, or STAGE/STEP when two stages have a step\n"
    "of that name). The old link stops working; the new one goes to the step's\n"
    "channels again, is recorded in the history (without the link) and is printed.\n"
    "Needs a token with the approver role: --token-file, or $STEPPY_TOKEN.\n"
    "EXECUTION may be a unique prefix. With several nodes, ask the node that\n"
    "runs the release (the others answer 409).\n"
    "\n"
    "options:\n"
    "  --server URL        the server (https://steppy.example.com)\n"
    "  --token-file FILE   a file holding the API token (first line)\n"
    "  -h, --help          show this help\n"
    "\n"
    "exit status: 0 a new link was issued, 1 the server refused, 2 usage or\n"
    "             connection error\n";

/* The error message of an answer, or a generic one. */
static const char *answer_error(const json_t *j)
{
	const char *m = remote_error_message(j);
	return m ? m : "the server gave no reason";
}

/* Finds STEP (or STAGE/STEP) in an execution's report; false after printing why. */
static bool find_step(json_t *report, const char *want, long *ret_stage, long *ret_step)
{
	const char *slash = strchr(want, '/');
	size_t nstage = slash ? (size_t)(slash - want) : 0;
	const char *step_name = slash ? slash + 1 : want;
	json_t *stages = json_object_get(report, "stages"), *stage;
	size_t i, found = 0, nnames = 0;
	const char **names = xcalloc(1024 + 1, sizeof(*names));
	json_array_foreach(stages, i, stage)
	{
		const char *sname = json_string_value(json_object_get(stage, "name"));
		json_t *step;
		size_t k;
		json_array_foreach(json_object_get(stage, "steps"), k, step)
		{
			const char *name = json_string_value(json_object_get(step, "name"));
			if (!name || !sname)
				continue;
			if (nnames < 1024)
				names[nnames++] = name;
			if (strcmp(name, step_name) != 0 ||
			    (slash && (strlen(sname) != nstage || strncmp(sname, want, nstage))))
				continue;
			if (!found++) {
				*ret_stage = (long)i;
				*ret_step = (long)k;
			}
		}
	}
	if (found > 1)
		fprintf(stderr, "steppy: %zu steps are called \"%s\": say which as STAGE/STEP\n",
		        found, step_name);
	else if (!found) {
		const char *guess = suggest_closest(step_name, names);
		fprintf(stderr, "steppy: the release has no step \"%s\"%s%s%s\n", want,
		        guess ? "; did you mean \"" : "", guess ? guess : "", guess ? "\"?" : "");
	}
	free(names);
	return found == 1;
}

/* The client for ctx's server and token; prints what is wrong and returns
 * EXIT_USAGE, else EXIT_OK (release rm in every case). */
static int link_remote(struct remote *rm, const struct cli_ctx *ctx)
{
	struct strbuf err = STRBUF_INIT;
	char *token = NULL;
	int status = EXIT_OK;
	if (remote_token_load(ctx->token_file, &token, &err) < 0 ||
	    remote_init(rm, ctx->server, token, &err) < 0)
		status = usage_error("%s", err.buf);
	else if (remote_cleartext(rm))
		fprintf(stderr,
		        "steppy: warning: %s is plain http: the API token crosses the network "
		        "unencrypted (use https://)\n",
		        rm->url);
	strbuf_release(&err);
	return status;
}

/* Asks for the new link of step (stage, step) of release id and prints it. */
static int link_issue(const struct remote *rm, const char *id, const char *want, long stage,
                      long step)
{
	struct strbuf err = STRBUF_INIT;
	json_t *ans = NULL, *body = json_object();
	long code = 0;
	char *path = xstrfmt("/api/v1/executions/%s/steps/%ld/%ld/link", id, stage, step);
	int status = EXIT_OK;
	if (remote_call(rm, "POST", path, body, &code, &ans, &err) < 0) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		status = EXIT_USAGE;
	} else if (code == 201) {
		printf("%s\n", json_string_value(json_object_get(ans, "url")));
		json_t *to = json_object_get(ans, "channels"), *ch;
		size_t i;
		fprintf(stderr, "steppy: new approval link for %s, step \"%s\"; sent to ", id,
		        want);
		json_array_foreach(to, i, ch)
		    fprintf(stderr, "%s%s", i ? ", " : "", json_string_value(ch));
		fputs("; the old link no longer works\n", stderr);
	} else {
		fprintf(stderr, "steppy: HTTP %ld: %s\n", code, answer_error(ans));
		status = code == 409 || code == 403 || code == 404 ? EXIT_INVALID : EXIT_USAGE;
	}
	free(path);
	json_decref(body);
	json_decref(ans);
	strbuf_release(&err);
	return status;
}

int cmd_link(int argc, char **argv, const struct cli_ctx *ctx)
{
	if (!ctx->server)
		return usage_error("link needs --server URL (see steppy link --help)");
	if (argc != 3)
		return usage_error("link needs EXECUTION and STEP (see steppy link --help)");
	const char *want = argv[2];
	if (strpbrk(argv[1], "/?#% ") || !*argv[1])
		return usage_error("\"%s\" is not an execution id", argv[1]);
	struct remote rm;
	int status = link_remote(&rm, ctx);
	if (status != EXIT_OK)
		return status;
	char *id = NULL; /* the whole id: ID may be a unique prefix */
	status = remote_find(&rm, argv[1], &id);
	if (status != EXIT_OK) {
		remote_release(&rm);
		return status;
	}
	struct strbuf err = STRBUF_INIT;
	json_t *report = NULL;
	long code = 0, stage = 0, step = 0;
	char *path = xstrfmt("/api/v1/executions/%s", id);
	if (remote_call(&rm, "GET", path, NULL, &code, &report, &err) < 0) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		status = EXIT_USAGE;
	} else if (code != 200) {
		fprintf(stderr, "steppy: %s: HTTP %ld: %s\n", id, code, answer_error(report));
		status = code == 404 ? EXIT_INVALID : EXIT_USAGE;
	} else if (!find_step(report, want, &stage, &step)) {
		status = EXIT_INVALID;
	} else {
		status = link_issue(&rm, id, want, stage, step);
	}
	free(path);
	free(id);
	json_decref(report);
	remote_release(&rm);
	strbuf_release(&err);
	return status;
}
