/*
 * report.h - an execution as JSON for people and programs: its summary row,
 * stages, steps with state, timing, last error, the remote work they
 * started (build id, logs link ...) and what each waiting step waits for.
 * `steppy show --format json` and the HTTP API print the same document.
 */
#ifndef STEPPY_RUNTIME_REPORT_H
#define STEPPY_RUNTIME_REPORT_H

#include "runtime/history.h"
#include "store/store.h"

#include <jansson.h>

/* The summary of an execution (a projection row). New reference. */
json_t *exec_row_json(const struct exec_row *row);

/* The whole report: exec_row_json() plus "status" and "stages". */
json_t *execution_report(const struct exec_row *row, const struct loaded_exec *le);

#endif
