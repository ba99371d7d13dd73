/*
 * store-cli.c - what commands need to reach the store: where it is, who is
 * asking, which execution and which step they mean.
 */
#include "cli/cli.h"

#include "runtime/history.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/suggest.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates every missing directory of path's parent (mode 0700). */
static int make_parents(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int r = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		for (char *p = dir + 1; *p && r == 0; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			if (mkdir(dir, 0700) < 0 && errno != EEXIST)
				r = -1;
			*p = '/';
		}
		if (r == 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
			r = -1;
	}
	free(dir);
	return r;
}

/* The default SQLite store: in the user's state directory. */
static char *default_store_path(void)
{
	const char *state = getenv("XDG_STATE_HOME");
	if (state && *state == '/')
		return xstrfmt("%s/steppy/steppy.db", state);
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : "/tmp";
	}
	return xstrfmt("%s/.local/state/steppy/steppy.db", home);
}

char *cli_store_path(const char *db_flag)
{
	if (db_flag && *db_flag)
		return xstrdup(db_flag);
	const char *env = getenv("STEPPY_DB");
	if (env && *env)
		return xstrdup(env);
	return default_store_path();
}

char *cli_key_path(void)
{
	const char *env = getenv("STEPPY_SECRET_KEY_FILE");
	if (env && *env)
		return xstrdup(env);
	const char *state = getenv("XDG_STATE_HOME");
	if (state && *state == '/')
		return xstrfmt("%s/steppy/secret.key", state);
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : "/tmp";
	}
	return xstrfmt("%s/.local/state/steppy/secret.key", home);
}

/* Opens the store at path; create: make it (and its directory) if missing. */
static int open_at(char *path, bool create, struct store **ret, char **ret_path)
{
	/* A PostgreSQL URL names no directory (docs/scale-out.md). */
	if (create && !store_is_url(path) && make_parents(path) < 0) {
		fprintf(stderr, "steppy: cannot create the directory of %s: %s\n", path,
		        strerror(errno));
		free(path);
		return EXIT_USAGE;
	}
	struct strbuf err = STRBUF_INIT;
	int r = create ? store_open(path, ret, &err) : store_open_existing(path, ret, &err);
	if (r < 0) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		strbuf_release(&err);
		free(path);
		return EXIT_USAGE;
	}
	char *key = cli_key_path();
	store_set_key_file(*ret, key);
	free(key);
	strbuf_release(&err);
	if (ret_path)
		*ret_path = path;
	else
		free(path);
	return EXIT_OK;
}

int cli_open_store(const char *db_flag, struct store **ret, char **ret_path)
{
	return open_at(cli_store_path(db_flag), true, ret, ret_path);
}

int cli_open_store_existing(const char *db_flag, struct store **ret, char **ret_path)
{
	return open_at(cli_store_path(db_flag), false, ret, ret_path);
}

char *cli_notify_log(const char *store_path)
{
	if (store_is_url(store_path)) { /* beside where the default store would be */
		char *def = default_store_path();
		char *log = cli_notify_log(def);
		free(def);
		return log;
	}
	const char *slash = strrchr(store_path, '/');
	return slash ? xstrfmt("%.*s/notifications.log", (int)(slash - store_path), store_path)
	             : xstrdup("notifications.log");
}

char *cli_whoami(void)
{
	const char *user = getenv("USER");
	if (!user || !*user) {
		struct passwd *pw = getpwuid(getuid());
		user = pw ? pw->pw_name : "unknown";
	}
	char host[128] = "localhost";
	gethostname(host, sizeof(host) - 1);
	return xstrfmt("%s@%s", user, host);
}

int cli_find_execution(struct store *st, const char *id_or_prefix, struct exec_row *row)
{
	struct strbuf err = STRBUF_INIT;
	int r = store_get(st, id_or_prefix, row, &err);
	if (r < 0) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		strbuf_release(&err);
		return r == SP_ENOENT || r == SP_EINVAL ? EXIT_USAGE : EXIT_USAGE;
	}
	strbuf_release(&err);
	return EXIT_OK;
}

int cli_steps_of_plan(const struct plan *plan, const struct exec_state *state,
                      struct cli_step **ret, size_t *ret_n)
{
	size_t n = 0;
	for (size_t i = 0; i < plan->nstages; i++)
		n += plan->stages[i].nsteps;
	struct cli_step *steps = xcalloc(n ? n : 1, sizeof(*steps));
	size_t k = 0;
	for (size_t i = 0; i < plan->nstages; i++)
		for (size_t j = 0; j < plan->stages[i].nsteps; j++, k++) {
			const struct plan_step *ps = &plan->stages[i].steps[j];
			steps[k] = (struct cli_step){
				.stage = plan->stages[i].name,
				.name = ps->name,
				.waiting = (ps->type->flags & STEP_DECISION) &&
				           (int)i == state->stage && state->stage_open &&
				           state->steps[i][j].status == STEP_RUNNING,
				.stage_index = (int)i,
				.step_index = (int)j,
			};
		}
	*ret = steps;
	*ret_n = n;
	return 0;
}

bool cli_not_an_approver(const struct exec_state *state, int stage, int step, const char *by,
                         bool approve)
{
	struct approval_decider d = { .by = by, .approver_role = -1, .people = NULL };
	enum approval_verdict v = engine_may_decide(state, stage, step, &d, approve, NULL);
	const struct approval_rule *rule =
	    approval_rule_of(&state->plan->stages[stage].steps[step]);
	return v == APPROVAL_NOT_LISTED || (v == APPROVAL_NO_NAME && rule && rule->napprovers);
}

/* How well name names s: 2 exactly, 1 but for case, 0 not at all. */
static int step_match(const struct cli_step *s, const char *name)
{
	size_t sl = strlen(s->stage);
	bool qualified = !strncmp(name, s->stage, sl) && name[sl] == '/';
	bool qualified_ci = !strncasecmp(name, s->stage, sl) && name[sl] == '/';
	if (!strcmp(s->name, name) || (qualified && !strcmp(name + sl + 1, s->name)))
		return 2;
	if (!strcasecmp(s->name, name) || (qualified_ci && !strcasecmp(name + sl + 1, s->name)))
		return 1;
	return 0;
}

int cli_resolve_step(const struct cli_step *steps, size_t n, const char *name,
                     const struct cli_step **ret)
{
	/* Exact matches win; otherwise the case of the name does not matter. */
	int found = 0, any = 0;
	for (int level = 2; level >= 1 && !found && !any; level--)
		for (size_t i = 0; i < n; i++) {
			if (step_match(&steps[i], name) != level)
				continue;
			any++;
			if (steps[i].waiting) {
				*ret = &steps[i];
				found++;
			}
		}
	if (found == 1)
		return EXIT_OK;
	if (found > 1) {
		fprintf(stderr,
		        "steppy: several waiting steps are named \"%s\"; write STAGE/STEP\n", name);
		return EXIT_USAGE;
	}
	if (any) {
		fprintf(stderr, "steppy: step \"%s\" does not wait for a decision now\n", name);
		return 1;
	}
	/* Unknown: suggest a waiting step first, any step otherwise. */
	const char **names = xcalloc(n + 1, sizeof(*names));
	const char *guess = NULL;
	for (int pass = 0; pass < 2 && !guess; pass++) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (pass || steps[i].waiting)
				names[k++] = steps[i].name;
		names[k] = NULL;
		guess = suggest_closest(name, names);
	}
	fprintf(stderr, "steppy: the release has no step \"%s\"", name);
	if (guess)
		fprintf(stderr, "; did you mean \"%s\"?", guess);
	fputc('\n', stderr);
	free(names);
	return EXIT_USAGE;
}

int cli_load_execution(const char *db, const char *id_or_prefix, struct store **st,
                       struct exec_row *row, struct loaded_exec *le)
{
	int code = cli_open_store_existing(db, st, NULL);
	if (code == EXIT_OK)
		code = cli_find_execution(*st, id_or_prefix, row);
	if (code == EXIT_OK) {
		struct strbuf err = STRBUF_INIT;
		if (execution_load(*st, row->id, le, &err) < 0) {
			fprintf(stderr, "steppy: %s\n", err.buf);
			code = EXIT_USAGE;
		}
		strbuf_release(&err);
	}
	return code;
}
