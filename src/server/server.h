/*
 * server.h - `steppy serve`: the HTTP API, approval pages and dashboard,
 * served by libmicrohttpd beside the engine's libuv loop.
 *
 * Threads: the engine runs on the loop thread; libmicrohttpd reads and
 * writes connections on a few epoll threads that never block, and complete
 * requests are handled on worker threads (their connections parked
 * meanwhile; live streams park between polls). Worker threads read the
 * store through connections of their own (a small pool) and change executions the way
 * any other process does: decisions and aborts through control_apply()
 * (the store's inbox, answered by the loop thread), submissions and
 * retries as jobs run on the loop thread.
 *
 * Use: server_new(); runtime_new() with server_observer() in its options;
 * server_start(); runtime_run(); server_free().
 */
#ifndef STEPPY_SERVER_SERVER_H
#define STEPPY_SERVER_SERVER_H

#include "runtime/runtime.h"
#include "server/config.h"

struct server;

struct server *server_new(const struct serve_config *config, const char *store_path);
/* The runtime observer that keeps the server informed (approval links,
 * notifications, metrics); valid until server_free(). */
const struct runtime_observer *server_observer(struct server *srv);
/*
 * The key that signs approval-page forms (before server_start()). Without
 * it, a random key of this process: a form is then accepted only by the
 * process that served its page. Nodes that share a store and give the same
 * key (cmd-serve derives it from the secret key file) accept each other's
 * forms, across restarts too. Sessions keep a key of their own, new at
 * every start.
 */
void server_set_form_key(struct server *srv, const unsigned char key[32]);
/* Starts listening. Returns 0, or a negative code with the reason in err. */
int server_start(struct server *srv, struct runtime *rt, struct strbuf *err);
/*
 * After server_start(): SIGHUP reads config_path again and applies its
 * tokens, channels and people (reload.c) without stopping anything;
 * live_people is the directory the runtime was given (runtime_options),
 * updated in place on the loop thread. A configuration that does not load,
 * or that would remove every token, is refused with a log line and the old
 * one stays. config_path NULL: nothing to reload. Returns 0.
 */
int server_watch_reload(struct server *srv, const char *config_path, struct people *live_people);
/* Stops listening, waits for the worker threads, frees; accepts NULL. */
void server_free(struct server *srv);
/* The address people use (publicUrl, else where it listens). */
const char *server_url(const struct server *srv);
/* Where it listens ("http://127.0.0.1:8080"). */
const char *server_listen_url(const struct server *srv);

#endif
