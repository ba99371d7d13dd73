/*
 * channels.c - the table of channel kinds (channel-type.h): one row per
 * kind, one file per kind. A row X(name) stands for the const struct
 * channel_type channel_<name> that src/notify/channel-<name>.c exports: it
 * is declared and listed from this one line. The order is the order kinds
 * are listed in messages ("type" must be one of slack, teams, ...). Adding
 * a channel is a file and a row here (the checklist is in channel-type.h).
 */
#include "notify/channel-type.h"

#include <stddef.h>

#define CHANNEL_KINDS(X)                                                                           \
	X(slack)                                                                                   \
	X(teams)                                                                                   \
	X(webhook)                                                                                 \
	X(email)                                                                                   \
	X(sns)                                                                                     \
	X(log)                                                                                     \
	X(terminal)

#define DECLARE(name) extern const struct channel_type channel_##name;
#define ROW(name)     &channel_##name,

CHANNEL_KINDS(DECLARE)

const struct channel_type *const channel_types[] = { CHANNEL_KINDS(ROW) NULL };
