/*
 * plugin.h - step types provided by plugins: executables on a plugin path
 * that speak a small versioned JSON protocol on stdin/stdout
 * (docs/plugins.md). One request per call, one answer; calls are
 * "describe" (at start-up: the type's name and fields), "start" (given the
 * attempt's idempotency key; answers a handle), "status" (done, failed or
 * running with a next poll) and "cancel".
 *
 * plugin.c reads describe answers into a struct plugin_type (a struct
 * step_type with a field table built from the answer, so that plugin fields
 * get the validator's diagnostics) and finds plugins on the path;
 * plugin-run.c runs calls on a libuv loop (a time limit, capped output,
 * stderr kept for messages) and is the runner (STEP_REATTACH: the handle
 * recorded in StepStarted lets a later process ask "status" instead of
 * starting the work again).
 */
#ifndef STEPPY_STEPS_PLUGIN_H
#define STEPPY_STEPS_PLUGIN_H

#include "plan/step-type.h"
#include "util/strbuf.h"

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define PLUGIN_PROTOCOL 1

/* Limits on what a plugin says (everything from a plugin is hostile). */
#define PLUGIN_DESCRIBE_MAX    (64 * 1024)  /* bytes of a describe answer */
#define PLUGIN_ANSWER_MAX      (256 * 1024) /* bytes of any other answer */
#define PLUGIN_STDERR_KEEP     2048         /* bytes of stderr kept for a message */
#define PLUGIN_MAX_FIELDS      64
#define PLUGIN_HANDLE_MAX      4096  /* bytes of a handle, as compact JSON */
#define PLUGIN_DESCRIBE_MS     10000 /* time limit of describe (a loaded machine is slow) */
#define PLUGIN_CALL_MS         30000 /* default time limit of start, status and cancel */
#define PLUGIN_CALL_MAX_S      300   /* most a describe may ask for ("timeoutSeconds") */
#define PLUGIN_POLL_MIN_MS     1000
#define PLUGIN_POLL_MAX_MS     300000
#define PLUGIN_POLL_DEFAULT_MS 5000

/*
 * A plugin's step type. type is first: the registry holds &type, and
 * plugin_type_of() finds the rest from a step's "type" field. Everything is
 * owned by the struct; registered types live as long as the process.
 */
struct plugin_type {
	struct step_type type;     /* name, summary, flags, fields (= fields) and hooks */
	char *path;                /* absolute path of the executable */
	char *name;                /* the type's name, as in plans */
	char *summary;             /* one line, never NULL */
	struct field_spec *fields; /* nfields + 1 entries, the last { NULL } */
	size_t nfields;
	char **patterns; /* per field: a POSIX extended regex for strings, or NULL */
	regex_t *regex;  /* per field: compiled patterns[i] (when set) */
	char ***choices; /* per field: NULL-terminated enum values, or NULL */
	char **env;      /* NULL-terminated names passed from steppy's environment */
	int64_t call_ms; /* time limit of its start, status and cancel calls */
	bool no_wait;    /* describe said "noWait": NAMENoWait is registered too */
};

/*
 * Reads a describe answer (text, len bytes) of the plugin at path. On
 * success sets *ret (caller owns: plugin_type_free()) and returns 0; on
 * failure returns SP_EINVAL with what is wrong in err (no path in it).
 */
int plugin_describe_parse(const char *path, const char *text, size_t len, struct plugin_type **ret,
                          struct strbuf *err);

/* Frees a type that was never registered. Accepts NULL. */
void plugin_type_free(struct plugin_type *pt);

/* The plugin type of a step (from its "type" field), or NULL if the step's
 * type is not a plugin's. */
const struct plugin_type *plugin_type_of(const struct doc_node *step);

enum plugin_state { PLUGIN_RUNNING, PLUGIN_DONE, PLUGIN_FAILED };

/* A start, status or cancel answer. */
struct plugin_answer {
	enum plugin_state state;
	json_t *handle;  /* start: the handle (owned), or NULL */
	json_t *outputs; /* done or failed: an object (owned), or NULL */
	char *message;   /* owned, or NULL */
	int64_t poll_ms; /* running: the next poll, within the PLUGIN_POLL_* bounds */
};

/*
 * Reads an answer to call ("start", "status", "cancel"). Start answers
 * need a handle unless they say done or failed. Returns 0 and fills *ret
 * (release with plugin_answer_release()), or SP_EINVAL with the problem in
 * err.
 */
int plugin_answer_parse(const char *call, const char *text, size_t len, struct plugin_answer *ret,
                        struct strbuf *err);
void plugin_answer_release(struct plugin_answer *ans);

/* ---- discovery ---- */

/*
 * The plugin path: STEPPY_PLUGIN_PATH's directories (a colon list), then
 * extra (a colon list from the configuration, or NULL), then
 * $XDG_DATA_HOME/steppy/plugins (or ~/.local/share/steppy/plugins) and
 * /usr/lib/steppy/plugins. Returns a NULL-terminated list the caller frees
 * (each string and the array).
 */
char **plugin_path(const char *extra);

/*
 * Finds the plugins on the path (plugin_path(extra)), asks each "describe"
 * (all at once, on a private loop, each within PLUGIN_DESCRIBE_MS) and
 * registers their types. What was refused (a file writable by others, a
 * symlink, a name taken, a bad answer ...) is appended to warnings, one
 * line each naming the file. A directory is scanned once per process:
 * a later call (with the configuration's directories) adds only what it
 * has not seen. Returns the number of types registered.
 */
int plugins_load(const char *extra, struct strbuf *warnings);

/*
 * Whether the file at path may be run as a plugin: a regular file (not a
 * symlink), executable, owned by root or us, writable by no one else, in a
 * directory writable by no one else. Returns 0, or SP_EINVAL with the
 * reason in err.
 */
int plugin_file_check(const char *path, struct strbuf *err);

/* ---- calls (plugin-run.c) ---- */

struct plugin_call_result {
	bool timed_out;      /* killed at its time limit */
	bool too_big;        /* killed for printing more than its cap */
	int64_t exit_status; /* when it exited */
	int term_signal;     /* when a signal ended it, else 0 */
	const char *out;     /* stdout (NUL-terminated; borrowed, valid in the callback) */
	size_t out_len;
	const char *err; /* the first PLUGIN_STDERR_KEEP bytes of stderr, NUL-terminated */
	size_t err_len;
};

typedef void (*plugin_call_cb)(void *arg, const struct plugin_call_result *res);
struct plugin_call;

/*
 * Runs `path verb` in its own session with request on stdin (a memory
 * file: a plugin that does not read it blocks nothing), env as its whole
 * environment, its output capped at out_cap bytes, killed (SIGKILL) after
 * timeout_ms. cb is called once on loop when it has exited (and its pipes
 * are closed or a short drain has passed). Returns 0 and sets *ret (valid
 * until cb returns), or a negative SP_E* code with the reason in err (cb is
 * then never called).
 */
int plugin_call_start(uv_loop_t *loop, const char *path, const char *verb, const char *request,
                      char *const *env, int64_t timeout_ms, size_t out_cap, plugin_call_cb cb,
                      void *arg, struct plugin_call **ret, struct strbuf *err);

/* Kills a call in flight and forgets it: cb is never called. */
void plugin_call_abandon(struct plugin_call *c);

/*
 * Appends why a call failed, or nothing when it exited 0 with output:
 * "timed out after N s", "printed more than N bytes", "exited with status
 * N", "killed by signal N", each followed by ": " and its stderr (NULs and
 * bad UTF-8 made safe). Returns true when the call failed.
 */
bool plugin_call_failed(const struct plugin_call_result *res, int64_t timeout_ms, size_t out_cap,
                        struct strbuf *out);

/* Hooks of plugin types (plugin-run.c). */
int plugin_run_start(struct attempt *a, const struct attempt_info *info, const void *config,
                     void **ret_state, struct strbuf *err);
void plugin_run_cancel(struct attempt *a, void *state);
void plugin_run_detach(void *state);

/* The environment of a plugin's calls: PATH (a fixed safe one when
 * minimal), HOME, LANG, LC_ALL, LC_CTYPE, TZ, USER, LOGNAME, TMPDIR, and
 * the variables its describe named in "env". Caller frees (each and the
 * array). */
char **plugin_env(const struct plugin_type *pt, bool minimal);

/* What bind() makes of a plugin step. */
struct plugin_config {
	const struct plugin_type *pt; /* borrowed: registered types live on */
	json_t *fields;               /* owned: the step's plugin fields, bound */
};

#endif
