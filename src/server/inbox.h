/*
 * inbox.h - a directory whose plan files start releases (see inbox.c).
 * Everything runs on the loop thread.
 */
#ifndef STEPPY_SERVER_INBOX_H
#define STEPPY_SERVER_INBOX_H

#include "runtime/runtime.h"
#include "store/store.h"

#include <uv.h>

struct inbox;

struct channel;

/* Watches dir (a directory, or s3://BUCKET/PREFIX) every poll_ms; st is a
 * store connection of the loop thread. A plan naming a channel that is not
 * one of channels (n of them, borrowed: they must outlive the inbox) is
 * invalid. */
struct inbox *inbox_start(uv_loop_t *loop, struct runtime *rt, struct store *st, const char *dir,
                          int64_t poll_ms, struct channel *const *channels, size_t nchannels);
/* A release ended: its file's result records the status. */
void inbox_finished(struct inbox *in, const char *id, const char *status);
/* Stops watching; memory goes when the loop closes the timer. Accepts NULL. */
void inbox_stop(struct inbox *in);

#endif
