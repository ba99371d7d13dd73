/*
 * store-cli.c - what commands need to reach the store: where it is, who is
 * asking, which execution and which step they mean.
 */
#include "cli/cli.h"

#include "util/alloc.h"
#include "util/error.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
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

char *cli_store_path(const char *db_flag)
{
	if (db_flag && *db_flag)
		return xstrdup(db_flag);
	const char *env = getenv("STEPPY_DB");
	if (env && *env)
		return xstrdup(env);
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

int cli_open_store(const char *db_flag, struct store **ret, char **ret_path)
{
	char *path = cli_store_path(db_flag);
	if (make_parents(path) < 0) {
		fprintf(stderr, "steppy: cannot create the directory of %s: %s\n", path,
		        strerror(errno));
		free(path);
		return EXIT_USAGE;
	}
	struct strbuf err = STRBUF_INIT;
	int r = store_open(path, ret, &err);
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

char *cli_notify_log(const char *store_path)
{
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

int cli_find_step(const struct plan *plan, const struct exec_state *state, const char *name,
                  bool human_waiting, int *ret_stage, int *ret_step)
{
	/* "STAGE/STEP" names a step of one stage; a plain name may match several. */
	int found = 0;
	for (size_t i = 0; i < plan->nstages; i++) {
		for (size_t j = 0; j < plan->stages[i].nsteps; j++) {
			const char *step = plan->stages[i].steps[j].name;
			char *qualified = xstrfmt("%s/%s", plan->stages[i].name, step);
			bool match = !strcmp(step, name) || !strcmp(qualified, name);
			free(qualified);
			if (!match)
				continue;
			if (human_waiting && ((int)i != state->stage || !state->stage_open ||
			                      state->steps[i][j].status != STEP_RUNNING))
				continue;
			*ret_stage = (int)i;
			*ret_step = (int)j;
			found++;
		}
	}
	return found;
}
