/*
 * cli.h - what the subcommands share: the command table, exit codes,
 * terminal colour, option helpers, diagnostics output.
 *
 * Adding a subcommand: write src/cli/cmd-<name>.c with a cmd_<name>()
 * function and its help text, declare it below, add one row to the table
 * in commands.c, document it in docs/cli.md, and test it in tests/cli/.
 */
#ifndef STEPPY_CLI_H
#define STEPPY_CLI_H

#include "core/engine.h"
#include "plan/diag.h"
#include "plan/doc.h"
#include "plan/plan.h"
#include "store/store.h"
#include "util/version.h"

#include <stdbool.h>
#include <stdio.h>

/* Exit codes of every subcommand (documented in docs/cli.md). */
enum {
	EXIT_OK = 0,      /* success; for validate: every plan is valid */
	EXIT_INVALID = 1, /* a plan is invalid */
	EXIT_USAGE = 2,   /* bad arguments, unreadable file, or other I/O error */
};

struct command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;               /* one line for `steppy help`; NULL: internal */
	const char *help;                  /* full text for --help */
};

extern const struct command commands[];
const struct command *command_find(const char *name);

/* Prints a command's help to f. */
void command_help(const struct command *cmd, FILE *f);

struct option;
/*
 * For the default case of a getopt_long() loop (main() sets opterr to 0):
 * prints what is wrong with the option just read - unknown (with "did you
 * mean" among opts), ambiguous, a value missing or not taken - and returns
 * EXIT_USAGE. argv[0] is the command's name.
 */
int cli_option_error(char **argv, const struct option *opts);

/* Prints "steppy: <message>" to stderr and returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether to colour output to f: a terminal, NO_COLOR unset or empty, TERM not dumb. */
bool use_colour(FILE *f);

/* Parses NAME=VALUE into v (pointing into arg). Returns 0 or -1. */
int parse_var(char *arg, struct var_value *v);

enum output_format { FORMAT_TEXT, FORMAT_JSON };
/* Parses a --format argument. Returns 0 or -1. */
int parse_format(const char *arg, enum output_format *out);

/* Prints diagnostics as compilers do: location, message, source line, caret. */
void diag_print_text(FILE *f, const struct diag_list *dl, const struct doc *doc, bool colour);

struct json_t;
/* Returns a new JSON array of the diagnostics (jansson reference). */
struct json_t *diag_to_json(const struct diag_list *dl);

/*
 * Loads, validates and binds a plan for a command. On failure prints the
 * diagnostics and returns the exit code; on success returns EXIT_OK and
 * *ret_plan (caller frees with plan_free()).
 */
/* doc_load(), also for s3://BUCKET/KEY (read with the default AWS
 * credentials); read errors become a diagnostic. */
int cli_load_doc(const char *path, struct doc **ret_doc, struct diag_list *dl);

int cli_load_plan(const char *path, const struct var_value *vals, size_t nvals,
                  struct plan **ret_plan);

/* The store path: --db, $STEPPY_DB, $XDG_STATE_HOME/steppy/steppy.db,
 * ~/.local/state/steppy/steppy.db. Caller frees. */
char *cli_store_path(const char *db_flag);
/* The local notification log of a store: notifications.log beside it.
 * Caller frees. */
char *cli_notify_log(const char *store_path);

/* The secret key file for `secret: true` values: $STEPPY_SECRET_KEY_FILE, else
 * secret.key under $XDG_STATE_HOME/steppy or ~/.local/state/steppy. Caller frees. */
char *cli_key_path(void);

/* Opens the store (creating it and its directory) with the secret key file
 * of cli_key_path(); prints errors. Returns an exit code; *ret_path (if not
 * NULL) is the path, caller frees. */
int cli_open_store(const char *db_flag, struct store **ret, char **ret_path);
/* cli_open_store() for commands that only read, ask, or continue what is
 * there: a missing store is not created ("no store at PATH", EXIT_USAGE). */
int cli_open_store_existing(const char *db_flag, struct store **ret, char **ret_path);
/* "user@host" of whoever runs the command; caller frees. */
char *cli_whoami(void);
/* Finds an execution by id or unique prefix; prints errors. Returns an exit code. */
int cli_find_execution(struct store *st, const char *id_or_prefix, struct exec_row *row);
/* A step as a command names it: from a loaded release or a server's report. */
struct cli_step {
	const char *stage, *name; /* borrowed */
	bool waiting;             /* a Human step that waits for a decision now */
	int stage_index, step_index;
};
/* The steps of a loaded release; *ret is the caller's to free (names borrowed). */
int cli_steps_of_plan(const struct plan *plan, const struct exec_state *state,
                      struct cli_step **ret, size_t *ret_n);
/*
 * Finds the waiting step that name ("STEP" or "STAGE/STEP") means: exact
 * matches first, else matches that differ only in case. Returns EXIT_OK and
 * *ret (pointing into steps), or prints why not ("did you mean" for an
 * unknown name) and returns 1 (the step does not wait) or EXIT_USAGE.
 */
int cli_resolve_step(const struct cli_step *steps, size_t n, const char *name,
                     const struct cli_step **ret);

/*
 * approve, reject, abort or retry (kind) through steppy serve at server
 * (--server), with the token of token_file or $STEPPY_TOKEN. step is the
 * step's name for decisions (else NULL); text the comment or reason (or
 * NULL). Prints the outcome; returns the command's exit code.
 */
int cli_remote_control(const char *kind, const char *server, const char *token_file, const char *id,
                       const char *step, const char *text);

/* Exit codes of run, resume and retry, by how the release ended. */
enum {
	EXIT_FAILED = 3,
	EXIT_REJECTED = 4,
	EXIT_ABORTED = 5,
	EXIT_STOPPED = 6, /* steppy stopped before the release ended; resume continues it */
};

int cmd_validate(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_supervise(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_retry(int argc, char **argv);
int cmd_approve(int argc, char **argv);
int cmd_reject(int argc, char **argv);
int cmd_abort(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_link(int argc, char **argv);

#endif
