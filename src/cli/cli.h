/*
 * cli.h - what the subcommands share: the command table, exit codes,
 * terminal colour, option helpers, diagnostics output.
 *
 * Adding a command (the checklist docs/ARCHITECTURE.md repeats):
 *  1. write src/cli/cmd-<name>.c: its help text `const char <name>_help[]`
 *     (usage line, what it does, options, exit status) and
 *     `int cmd_<name>(int argc, char **argv, const struct cli_ctx *ctx)`;
 *     argv holds the operands only (argv[0] is the name), the shared
 *     options are in ctx, its own options in ctx->opts (switch on id);
 *  2. own options: a `const struct option <name>_options[]` ({NULL} ended;
 *     val is the id it gets in ctx->opts) in that file;
 *  3. declare cmd_<name> below, declare <name>_help (and <name>_options)
 *     at the top of commands.c, and add one row to `commands[]` there: name, function, the CLI_*
 * flags of the shared options it takes (--db, --format, --var, --config, --server), its own
 * options, a one-line summary (NULL hides it from `steppy help`), the help;
 *  4. return the codes of `enum exit_code` only, print errors with
 *     usage_error() or "steppy: ..." on stderr, results on stdout;
 *  5. document it in docs/cli.md and test it in tests/cli/tNNNN-*.sh.
 */
#ifndef STEPPY_CLI_H
#define STEPPY_CLI_H

#include "core/engine.h"
#include "plan/diag.h"
#include "plan/doc.h"
#include "plan/plan.h"
#include "store/store.h"
#include "util/version.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/*
 * Exit codes of every subcommand, the one list (documented in docs/cli.md,
 * "Exit status"; README.md and each command's help quote it). Numbers are
 * never reused for something else: scripts test them.
 *
 * 1 has two names on purpose. It was documented and tested as "a plan is
 * invalid" for the commands that read a plan or a configuration (validate,
 * plan, graph, run, serve) and as "refused" for the commands that ask for a
 * change (approve, reject, abort, link, retry --server) before both lived in
 * one list; no command can end both ways, so the code stays 1 for each and
 * what it means follows from the command (tests/unit/test-cli-options.c).
 */
enum exit_code {
	EXIT_OK = 0,      /* success; for validate: every plan is valid */
	EXIT_INVALID = 1, /* a plan or configuration is invalid (diagnostics printed) */
	/* a change was refused: the release has ended, not an approver, 401/403/409 */
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2,    /* bad arguments, unreadable file, store, server or other I/O error */
	EXIT_FAILED = 3,   /* run, resume, retry: the release ended FAILED */
	EXIT_REJECTED = 4, /* ... ended REJECTED */
	EXIT_ABORTED = 5,  /* ... ended ABORTED */
	EXIT_STOPPED = 6,  /* steppy stopped before the release ended; resume continues it */
	EXIT_QUEUED = 7,   /* approve, reject, abort, retry: the process running the release
	                      did not answer in time; the command stays queued for it */
};

enum output_format { FORMAT_TEXT, FORMAT_JSON };

/*
 * The options several commands take, parsed once (command_run()) as the
 * flags of a command's row say, in the style of git's RUN_SETUP: a command
 * finds them in its struct cli_ctx and parses only its own options.
 */
enum cli_common {
	CLI_DB = 1 << 0,     /* --db PATH: the store (cli_store_path()) */
	CLI_FORMAT = 1 << 1, /* --format text|json */
	CLI_VAR = 1 << 2,    /* --var NAME=VALUE, --var-file NAME=FILE, repeatable: values
	                      * of plan variables */
	CLI_CONFIG = 1 << 3, /* --config FILE: steppy serve's configuration */
	CLI_SERVER = 1 << 4, /* --server URL and --token-file FILE: through steppy serve */
	CLI_RAW = 1 << 5,    /* no parsing at all: the command reads its argv as given */
};

/* One of a command's own options, in command-line order. */
struct cli_opt {
	int id;          /* the val of its struct option */
	const char *arg; /* its value (borrowed from argv), NULL if it takes none */
};

/*
 * What command_run() hands a command. Every pointer borrows from argv or
 * is owned by the context (cli_ctx_release()); a field of an option the
 * command does not take stays NULL / 0 / FORMAT_TEXT.
 */
struct cli_ctx {
	const char *db;            /* --db, or NULL: the default store */
	enum output_format format; /* --format, FORMAT_TEXT by default */
	struct var_value *vars;    /* every --var and --var-file, in order (owned; names
	                            * borrowed, values borrowed or in var_files) */
	size_t nvars;
	char **var_files; /* the values read by --var-file (owned) */
	size_t nvar_files;
	const char *config;     /* --config, or NULL */
	const char *server;     /* --server, or NULL */
	const char *token_file; /* --token-file, or NULL */
	struct cli_opt *opts;   /* the command's own options, in order (owned) */
	size_t nopts;
	char **operands; /* what is left: operands[0] is the command's name (owned) */
	int noperands;   /* counting operands[0] */
};

struct command {
	const char *name;
	/* argv[0] is the command's name, then its operands (every option taken
	 * out, unless CLI_RAW: then argv is as given). Returns the exit code. */
	int (*run)(int argc, char **argv, const struct cli_ctx *ctx);
	unsigned common;          /* enum cli_common: which shared options it takes */
	const struct option *own; /* its own long options ({NULL} ended), or NULL */
	const char *short_opts;   /* its own short options ("q"), or NULL; -h is everyone's */
	const char *summary;      /* one line for `steppy help`; NULL: internal */
	const char *help;         /* full text for --help */
};

extern const struct command commands[];
const struct command *command_find(const char *name);

/* Prints a command's help to f. */
void command_help(const struct command *cmd, FILE *f);

/*
 * Parses argv (argv[0] the command's name) for cmd into ctx: its common
 * options as cmd->common says, its own options in order, the operands.
 * Returns EXIT_OK; or -1 when --help (or -h) asked for the help, which it
 * has printed; or prints what is wrong ("steppy list: unknown option
 * --stauts; did you mean --status?", "--format must be text or json, not
 * \"x\"") and returns EXIT_USAGE. Call cli_ctx_release() in every case.
 * Sets getopt's opterr to 0.
 */
int cli_parse(const struct command *cmd, int argc, char **argv, struct cli_ctx *ctx);
/* Frees what ctx owns (not argv); ctx may be zeroed or partly filled. */
void cli_ctx_release(struct cli_ctx *ctx);
/* cli_parse(), then cmd->run() with the context; returns the exit code. */
int command_run(const struct command *cmd, int argc, char **argv);

/*
 * For commands with CLI_SERVER that can also work on the store: --token-file
 * only with --server, and no --db with --server. Prints the mistake and
 * returns EXIT_USAGE, else EXIT_OK.
 */
int cli_check_server(const struct cli_ctx *ctx);

/* Prints "steppy: <message>" to stderr and returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether to colour output to f: a terminal, NO_COLOR unset or empty, TERM not dumb. */
bool use_colour(FILE *f);

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
/* The local notification log of a store: notifications.log beside it (for
 * a PostgreSQL URL, beside where the default store would be). Caller frees. */
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
struct loaded_exec;
/* Opens the store (existing only), finds the release id_or_prefix names and
 * loads it (history folded). Prints errors; returns an exit code. *st, *row
 * and *le are the caller's to release (zeroed ones too) in every case. */
int cli_load_execution(const char *db, const char *id_or_prefix, struct store **st,
                       struct exec_row *row, struct loaded_exec *le);
/* "user@host" of whoever runs the command; caller frees. */
char *cli_whoami(void);
/* Finds an execution by id or unique prefix; prints errors. Returns an exit code. */
int cli_find_execution(struct store *st, const char *id_or_prefix, struct exec_row *row);
/* A step as a command names it: from a loaded release or a server's report. */
struct cli_step {
	const char *stage, *name; /* borrowed */
	bool waiting;             /* a step that takes decisions and waits for one now */
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
 * Whether the engine's rule refuses by deciding step of state because the
 * step's approvers do not name them, as a command on the store's
 * host sees it (no roles, no people directory): the CLI says so before
 * sending the decision. Other refusals are left to the engine.
 */
bool cli_not_an_approver(const struct exec_state *state, int stage, int step, const char *by,
                         bool approve);

/*
 * approve, reject, abort or retry (kind) through steppy serve at server
 * (--server), with the token of token_file or $STEPPY_TOKEN. step is the
 * step's name for decisions (else NULL); text the comment or reason (or
 * NULL). Prints the outcome; returns the command's exit code.
 */
int cli_remote_control(const char *kind, const char *server, const char *token_file, const char *id,
                       const char *step, const char *text);

int cmd_validate(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_plan(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_graph(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_help(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_version(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_supervise(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_run(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_resume(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_retry(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_approve(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_reject(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_abort(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_list(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_show(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_history(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_serve(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_token(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_link(int argc, char **argv, const struct cli_ctx *ctx);
int cmd_store(int argc, char **argv, const struct cli_ctx *ctx);

#endif
