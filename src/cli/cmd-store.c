/*
 * cmd-store.c - `steppy store`: looking after the store file itself.
 *
 *   steppy store backup [--force] FILE   a consistent copy while servers run
 *   steppy store check                   integrity and schema version
 *   steppy store migrate [--force] FILE URL   a SQLite store into PostgreSQL
 *
 * All go through store.h (store_backup, store_check,
 * store_schema_version, store_copy); this file only parses options and decides what to
 * print and which exit status to give.
 */
#include "cli/cli.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

const char store_help[] =
    "usage: steppy store backup [--db PATH] [--force] FILE\n"
    "       steppy store check [--db PATH]\n"
    "       steppy store migrate [--force] SQLITE_FILE URL\n"
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
    "store URL (postgres://...), in one transaction. Stop the steppy processes\n"
    "of SQLITE_FILE first. URL must hold no release unless --force.\n"
    "\n"
    "options:\n"
    "  --db PATH   the store (default: $STEPPY_DB, else as for steppy run)\n"
    "  --force     backup: replace FILE if it exists; migrate: copy into a\n"
    "              store that holds releases (what is there stays)\n"
    "  -h, --help  show this help\n"
    "\n"
    "exit status: 0 done (check: the store is sound), 1 the store is damaged,\n"
    "             from a newer steppy or cannot be read, 2 usage or I/O error\n";

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
 * no store, or a target that holds releases. */
static int store_migrate_cmd(const char *file, const char *url, bool force)
{
	if (store_is_url(file) || !store_is_url(url))
		return usage_error("store migrate copies a SQLite FILE into a postgres:// or "
		                   "postgresql:// URL (see steppy store --help)");
	struct store *src = NULL, *dst = NULL;
	struct strbuf err = STRBUF_INIT;
	char *shown = store_display_name(url);
	int code = EXIT_OK;
	int r = store_open_existing(file, &src, &err);
	if (r == 0)
		r = store_open(url, &dst, &err);
	int64_t n = 0;
	if (r == 0)
		r = store_copy(src, dst, force, &n, &err);
	if (r < 0) {
		fprintf(stderr, "steppy store migrate: %s\n", err.buf);
		code = r == SP_ESTORE ? 1 : EXIT_USAGE;
	} else {
		printf("steppy store migrate: %lld release%s copied from %s into %s\n",
		       (long long)n, n == 1 ? "" : "s", file, shown);
	}
	store_close(dst);
	store_close(src);
	free(shown);
	strbuf_release(&err);
	return code;
}

const struct option store_options[] = {
	{ "force", no_argument, NULL, 'f' },
	{ NULL, 0, NULL, 0 },
};

int cmd_store(int argc, char **argv, const struct cli_ctx *ctx)
{
	bool force = false;
	for (size_t i = 0; i < ctx->nopts; i++)
		if (ctx->opts[i].id == 'f')
			force = true;
	const char *what = argc > 1 ? argv[1] : NULL;
	int nargs = argc - 2;
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
		return store_migrate_cmd(argv[2], argv[3], force);
	}
	if (!what)
		return usage_error(
		    "store needs backup, check or migrate (see steppy store --help)");
	return usage_error("store has no \"%s\"; it has backup, check and migrate", what);
}
