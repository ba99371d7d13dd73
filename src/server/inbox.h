/*
 * inbox.h - a directory whose plan files start releases (see inbox.c).
 * Everything runs on the loop thread.
 */
#ifndef STEPPY_SERVER_INBOX_H
#define STEPPY_SERVER_INBOX_H

#include "engine/runtime.h"
#include "store/store.h"

#include <uv.h>

struct inbox;

/* Watches dir (a directory, or s3://BUCKET/PREFIX) every poll_ms; st is a
 * store connection of the loop thread. */
struct inbox *inbox_start(uv_loop_t *loop, struct runtime *rt, struct store *st, const char *dir,
                          int64_t poll_ms);
/* A release ended: its file's result records the status. */
void inbox_finished(struct inbox *in, const char *id, const char *status);
/* Stops watching; memory goes when the loop closes the timer. Accepts NULL. */
void inbox_stop(struct inbox *in);

#endif
