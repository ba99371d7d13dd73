/*
 * notify.h - the runner of Notify steps (notify-run.c), for the step type's
 * table in notify.c; private to those two files. The contracts are those of
 * the hooks in plan/step-type.h.
 */
#ifndef STEPPY_STEPS_NOTIFY_H
#define STEPPY_STEPS_NOTIFY_H

#include "runtime/runner.h"

int notify_step_start(struct attempt *a, const struct attempt_info *info, const void *config,
                      void **ret_state, struct strbuf *err);
void notify_step_cancel(struct attempt *a, void *state);
void notify_step_detach(void *state);

#endif
