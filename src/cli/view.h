/*
 * view.h - the terminal view of running releases.
 */
#ifndef STEPPY_CLI_VIEW_H
#define STEPPY_CLI_VIEW_H

#include "cli/cli.h"
#include "runtime/runtime.h"

struct view;

/* Makes a view and fills obs with its callbacks (obs->arg is the view). */
struct view *view_new(struct runtime_observer *obs, bool interactive);
/* Connects the view to the runtime (for the y/n prompt on a terminal). */
void view_attach(struct view *v, struct runtime *rt, bool interactive);
/* Tells the view that a steppy serve with API tokens at url uses the store
 * (NULL: none): hints for steps with approvers show --server, and y/n on
 * the terminal does not decide them. url is copied. */
void view_set_server(struct view *v, const char *url);
/* The --db the command was given (NULL: the default store): decision hints
 * name it, so that they work when copied to another terminal. */
void view_set_store(struct view *v, const char *db);
/* The terminal channel of Notify steps (notify_terminal_fn of notify/hub.h; arg is
 * the view): "[notify] TEXT" as a line of the log. */
void view_notify(void *arg, const char *execution_id, int64_t time_ms, const char *text);
/* Clears the status line, so that a message can follow on a clean line;
 * it comes back at the next refresh unless the runtime is stopping. */
void view_clear(struct view *v);
/* Clears the status line and frees the view; call before runtime_free(). */
void view_free(struct view *v);

#endif
