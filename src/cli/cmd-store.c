/*
 * cmd-store.c - `steppy store`: looking after the store file itself.
 *
 *   steppy store backup [--force] FILE   a consistent copy while servers run
 *   steppy store check                   integrity and schema version
 *   steppy store migrate [--force] [--ignore-leases] FILE URL
 *                                        a SQLite store into PostgreSQL
 *
 * All go through store.h (store_backup, store_check,
 * store_schema_version, store_copy); this file only parses options and decides what to
 * print and which exit status to give.
 */
#include "cli/cli.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char store_help[] =
    "usage: steppy store backup [--db PATH] [--force] FILE\n"
    "       steppy store check [--db PATH]\n"
    "       steppy store migrate [--force] [--ignore-leases] SQLITE_FILE URL\n"
    "\n"
    "backup writes a consistent copy of the store to FILE (mode 0600) while\n"
    "other steppy processes, a running steppy serve too, go on writing. FILE\n"
    "must not exist unless --force; a symbolic link is never followed. The\n"
    "secret key file (secret: true values) is not in the copy: back it up\n"
    "apart. To restore, stop the servers and put the copy in the store's place.\n"
    "\n"
    "check reads the whole store, checks its integrity and prints its schema\n"
    "version. A store written by a newer steppy is refused, never changed.\n"
    "\n"
    "migrate copies every release of the SQLite store SQLITE_FILE, with its\n"
    "history, inbox, links, sealed secrets and settings, into the PostgreSQL\n"
    "store URL (postgres://...), in one transaction, read from one snapshot of\n"
    "SQLITE_FILE. It refuses while a steppy process runs a release there (a\n"
    "live lease), naming it, unless --ignore-leases (then what is stored at\n"
    "that moment is copied). URL must hold no release unless --force. With\n"
    "--force a release in both is left when URL has the same history, replaced\n"
    "whole (history, links, sealed secrets) when SQLITE_FILE's went further\n"
    "(so what it added since an earlier copy comes along), and refuses the\n"
    "copy when URL's went further or apart or runs there: a history is never\n"
    "merged or cut, so no release disagrees with its history. An inbox\n"
    "command keeps its id unless URL holds another under it: then it gets a\n"
    "new one (never dropped). Settings URL has stay. It prints what it did.\n"
    "\n"
    "options:\n"
    "  --db PATH   the store (default: $STEPPY_DB, else as for steppy run)\n"
    "  --force     backup: replace FILE if it exists; migrate: copy into a\n"
    "              store that holds releases (see above)\n"
    "  --ignore-leases  migrate: copy while steppy processes run releases\n"
    "  -h, --help  show this help\n"
    "\n"
    "exit status: 0 done (check: the store is sound), 1 the store is damaged,\n"
    "             from a newer steppy or cannot be read, 2 usage or I/O error,\n"
    "             or migrate refused (URL not empty, a live lease, a release\n"
    "             that went further in URL): nothing was copied\n";

/* `store check`: 0 sound, 1 damaged or unreadable, 2 no store. */
static int store_check_cmd(const char *db)
{
	char *path = cli_store_path(db);
	struct store *st = NULL;
	struct strbuf err = STRBUF_INIT;
	int r = store_open_existing(path, &st, &err);
	int code = EXIT_OK;
	if (r < 0) {
		fprintf(stderr, "steppy store check: %s\n", err.buf);
		code = r == SP_ENOENT ? EXIT_USAGE : 1;
		goto out;
	}
	int version = 0, known = 0;
	r = store_schema_version(st, &version, &known, &err);
	if (r == 0)
		r = store_check(st, &err);
	if (r < 0) {
		fprintf(stderr, "steppy store check: %s\n", err.buf);
		code = 1;
		goto out;
	}
	char *shown = store_display_name(path); /* a URL's password masked */
	printf("%s: ok (schema %d; this steppy knows up to %d)\n", shown, version, known);
	free(shown);
out:
	store_close(st);
	strbuf_release(&err);
	free(path);
	return code;
}

/* `store backup`: 0 written, 1 the store cannot be read, 2 usage or I/O. */
static int store_backup_cmd(const char *db, const char *file, bool force)
{
	struct store *st;
	char *path;
	int code = cli_open_store_existing(db, &st, &path);
	if (code != EXIT_OK)
		return code;
	struct strbuf err = STRBUF_INIT;
	int r = store_backup(st, file, force, &err);
	if (r < 0) {
		fprintf(stderr, "steppy store backup: %s\n", err.buf);
		code = r == SP_ESTORE ? 1 : EXIT_USAGE;
	} else {
		printf("steppy store backup: %s written from %s\n", file, path);
	}
	strbuf_release(&err);
	store_close(st);
	free(path);
	return code;
}

/* `store migrate`: 0 copied, 1 a store cannot be read or written, 2 usage,
 * no store, or refused (a target that holds releases, a live lease, a
 * release that went further in the target). */
static int store_migrate_cmd(const char *file, const char *url, bool force, bool ignore_leases)
{
	if (store_is_url(file) || !store_is_url(url))
		return usage_error("store migrate copies a SQLite FILE into a postgres:// or "
		                   "postgresql:// URL (see steppy store --help)");
	struct store *src = NULL, *dst = NULL;
	struct strbuf err = STRBUF_INIT;
	char *shown = store_display_name(url);
	int code = EXIT_OK;
	int r = store_open_existing(file, &src, &err);
	/* The source's secrets are copied sealed: this process's key, if it
	 * has one, must be the source's (the copy checks the target's). The
	 * check only reads: a source that records no key is left so. */
	char *key = cli_key_path();
	if (r == 0) {
		store_set_key_file(src, key);
		r = store_key_check(src, STORE_KEY_OPTIONAL, NULL, &err);
	}
	free(key);
	if (r == 0)
		r = store_open(url, &dst, &err);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct store_copy_opts o = { .force = force,
		                     .ignore_leases = ignore_leases,
		                     .now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 };
	struct store_copy_counts n;
	if (r == 0)
		r = store_copy(src, dst, &o, &n, &err);
	if (r < 0) {
		fprintf(stderr, "steppy store migrate: %s\n", err.buf);
		code = r == SP_ESTORE ? 1 : EXIT_USAGE;
	} else {
		printf("steppy store migrate: %lld release%s copied, %lld replaced, %lld already "
		       "there; %lld inbox command%s copied, %lld under a new id, %lld already "
		       "there; from %s into %s\n",
		       (long long)n.copied, n.copied == 1 ? "" : "s", (long long)n.replaced,
		       (long long)n.unchanged, (long long)n.commands, n.commands == 1 ? "" : "s",
		       (long long)n.renumbered, (long long)n.commands_there, file, shown);
		/* The source is only read: its unfinished releases still
		 * read as running there, and would run a second time. */
		printf("steppy store migrate: %s is unchanged and still lists its unfinished "
		       "releases as running: do not serve, run or resume %s any more (they "
		       "would run again); start the nodes on the new store and keep the file "
		       "as a backup\n",
		       file, file);
	}
	store_close(dst);
	store_close(src);
	free(shown);
	strbuf_release(&err);
	return code;
}

const struct option store_options[] = {
	{ "force", no_argument, NULL, 'f' },
	{ "ignore-leases", no_argument, NULL, 'L' },
	{ NULL, 0, NULL, 0 },
};

int cmd_store(int argc, char **argv, const struct cli_ctx *ctx)
{
	bool force = false, ignore_leases = false;
	for (size_t i = 0; i < ctx->nopts; i++) {
		if (ctx->opts[i].id == 'f')
			force = true;
		if (ctx->opts[i].id == 'L')
			ignore_leases = true;
	}
	const char *what = argc > 1 ? argv[1] : NULL;
	int nargs = argc - 2;
	if (ignore_leases && !(what && !strcmp(what, "migrate")))
		return usage_error("--ignore-leases is an option of store migrate only");
	if (what && !strcmp(what, "backup")) {
		if (nargs != 1)
			return usage_error("store backup takes one FILE (see steppy store --help)");
		return store_backup_cmd(ctx->db, argv[2], force);
	}
	if (what && !strcmp(what, "check")) {
		if (nargs != 0 || force)
			return usage_error(
			    "store check takes no arguments (see steppy store --help)");
		return store_check_cmd(ctx->db);
	}
	if (what && !strcmp(what, "migrate")) {
		if (nargs != 2)
			return usage_error(
			    "store migrate takes SQLITE_FILE and URL (see steppy store --help)");
		return store_migrate_cmd(argv[2], argv[3], force, ignore_leases);
	}
	if (!what)
		return usage_error(
		    "store needs backup, check or migrate (see steppy store --help)");
	return usage_error("store has no \"%s\"; it has backup, check and migrate", what);
}
