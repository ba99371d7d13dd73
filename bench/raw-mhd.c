/*
 * raw-mhd.c - the yardstick of bench/serve.py: plain libmicrohttpd serving
 * one fixed answer, the bytes steppy gave for the same request, with the
 * same headers, to requests that carry the same bearer token. Whatever
 * steppy spends beyond this server is steppy's own cost.
 *
 * Not part of steppy: bench/serve.py builds it with cc and runs it.
 *
 *   raw-mhd BODY_FILE TOKEN [THREADS]
 *
 * Listens on 127.0.0.1 (a port the kernel picks), prints
 * "listening on http://127.0.0.1:PORT" and serves until SIGTERM/SIGINT.
 * THREADS: libmicrohttpd's epoll thread pool (default 2, one per core here).
 * Answers are queued on the second call of the access handler: the first
 * call's answers carry "Connection: close" (docs: PITFALLS, libmicrohttpd).
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct MHD_Response *ok, *unauthorized;
static const char *want_auth; /* "Bearer TOKEN" */
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
	(void)cls, (void)url, (void)version, (void)upload, (void)upload_size;
	static int first;
	if (!*con_cls) { /* headers only: answer on the next call */
		*con_cls = &first;
		return MHD_YES;
	}
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	bool good = auth && !strcmp(auth, want_auth) && !strcmp(method, "GET");
	return MHD_queue_response(conn, good ? 200 : 401, good ? ok : unauthorized);
}

static struct MHD_Response *answer(const char *body, size_t len)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "same-origin");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	return r;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: raw-mhd BODY_FILE TOKEN [THREADS]\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	static char body[16 << 20];
	size_t len = fread(body, 1, sizeof(body), f);
	fclose(f);
	size_t tlen = strlen(argv[2]) + 8;
	char *auth = malloc(tlen);
	if (!auth)
		return 1;
	snprintf(auth, tlen, "Bearer %s", argv[2]);
	want_auth = auth;
	unsigned threads = argc > 3 ? (unsigned)atoi(argv[3]) : 2;
	static const char denied[] = "{\"error\":{\"code\":\"unauthenticated\"}}";
	ok = answer(body, len);
	unauthorized = answer(denied, sizeof(denied) - 1);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, access_cb, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_CONNECTION_LIMIT, 1000u, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "raw-mhd: cannot start the daemon\n");
		return 1;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("listening on http://127.0.0.1:%u\n", di ? di->port : 0);
	fflush(stdout);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop)
		pause();
	MHD_stop_daemon(d);
	MHD_destroy_response(ok);
	MHD_destroy_response(unauthorized);
	free(auth);
	return 0;
}
