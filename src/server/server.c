/*
 * server.c - the HTTP side of `steppy serve` (see server.h): the
 * libmicrohttpd daemon, request bodies with a size limit, authentication,
 * routing and jobs for the loop thread. What handlers share about a request
 * and its answer is in respond.c, sending notices in notices.c.
 */
#include "server/log.h"
#include "server/server-internal.h"
#include "server/service.h"

#include "notify/hub.h"
#include "notify/slack.h"
#include "runtime/runner.h"
#include "server/auth.h"
#include "server/inbox.h"
#include "server/oidc.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/timefmt.h"
#include "util/utf8.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POLL_THREADS     4           /* libmicrohttpd's epoll threads: they never block */
#define WORKERS          32          /* run handlers, which may block (decisions, jobs) */
#define CONN_MEMORY      (32u << 10) /* per connection: its head, buffers */
#define OPEN_BODY_MAX    (64u << 10) /* a body before authentication */
#define OPEN_BODY_ALL    (16u << 20) /* all bodies before authentication */
#define DEADLINE_TICK_MS 100

struct job {
	void (*fn)(struct server *srv, void *arg);
	void *arg;
	bool done;
	struct job *next;
};

/* ---- jobs for the loop thread ------------------------------------------------- */

static void async_cb(uv_async_t *h)
{
	struct server *srv = h->data;
	pthread_mutex_lock(&srv->jobs_lock);
	struct job *jobs = srv->jobs;
	srv->jobs = NULL;
	pthread_mutex_unlock(&srv->jobs_lock);
	for (struct job *j = jobs; j;) {
		struct job *next = j->next;
		j->fn(srv, j->arg);
		pthread_mutex_lock(&srv->jobs_lock);
		j->done = true;
		pthread_cond_broadcast(&srv->jobs_done);
		pthread_mutex_unlock(&srv->jobs_lock);
		j = next;
	}
}

int server_call(struct server *srv, void (*fn)(struct server *srv, void *arg), void *arg)
{
	struct job j = { .fn = fn, .arg = arg };
	pthread_mutex_lock(&srv->jobs_lock);
	if (srv->closing) {
		pthread_mutex_unlock(&srv->jobs_lock);
		return -1;
	}
	j.next = srv->jobs;
	srv->jobs = &j;
	uv_async_send(&srv->async);
	while (!j.done && !srv->closing)
		pthread_cond_wait(&srv->jobs_done, &srv->jobs_lock);
	bool done = j.done;
	if (!done) /* closing: take it back if the loop never ran it */
		for (struct job **p = &srv->jobs; *p; p = &(*p)->next)
			if (*p == &j) {
				*p = j.next;
				break;
			}
	pthread_mutex_unlock(&srv->jobs_lock);
	return done ? 0 : -1;
}

/* ---- authentication ---------------------------------------------------------- */

/* The token of the request: a bearer token, else the session cookie. */
static void authenticate(struct request *rq)
{
	struct server *srv = rq->srv;
	if (!server_auth_on(srv)) {
		/* No tokens: the server listens on loopback only (checked at start). */
		rq->identity = "anonymous";
		rq->roles = ROLE_VIEWER | ROLE_OPERATOR | ROLE_APPROVER;
		return;
	}
	const char *auth = request_header(rq, "Authorization");
	const char *token = NULL;
	if (auth && !strncasecmp(auth, "Bearer ", 7))
		token = auth + 7;
	if (!token) {
		token = request_cookie(rq, "steppy_session");
		rq->by_cookie = token != NULL;
	}
	if (rq->by_cookie && session_signed_check(srv, token, (int64_t)time(NULL), rq->session_name,
	                                          sizeof(rq->session_name), &rq->roles)) {
		rq->identity = rq->session_name; /* signed in through OpenID Connect */
		return;
	}
	const struct api_token *t = token && *token ? server_find_token(srv, token) : NULL;
	if (t) {
		rq->identity = t->name;
		rq->roles = t->roles;
	}
}

/* ---- routing ------------------------------------------------------------------- */

/* Matches path against pattern; {} segments are copied to params. */
static bool match(const char *pattern, const char *path, char params[4][128])
{
	int n = 0;
	while (*pattern && *path) {
		if (!strncmp(pattern, "{}", 2)) {
			size_t len = strcspn(path, "/");
			if (!len || len >= 128 || n == 4)
				return false;
			memcpy(params[n], path, len);
			params[n++][len] = '\0';
			path += len;
			pattern += 2;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	return !*pattern && !*path;
}

/*
 * Routes the request and answers it. With headers_only (the body is not read
 * yet) it stops before the handler: what it answers then (401, 403, 404,
 * 405) is decided on the headers alone, and rq->status stays 0 otherwise.
 */
static void dispatch(struct request *rq, bool headers_only)
{
	if (auth_route(rq))
		return;
	const struct route *tables[] = { api_routes, page_routes,  personal_routes,
		                         web_routes, slack_routes, link_routes };
	bool path_known = false;
	struct strbuf allow = STRBUF_INIT;
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (const struct route *r = tables[t]; r->method; r++) {
			if (!match(r->pattern, rq->url, rq->params))
				continue;
			path_known = true;
			/* HEAD is GET without the body (libmicrohttpd drops it) */
			const char *method = !strcmp(rq->method, "HEAD") ? "GET" : rq->method;
			if (strcmp(r->method, method) != 0) {
				strbuf_addf(&allow, "%s%s", allow.len ? ", " : "", r->method);
				continue;
			}
			strbuf_release(&allow);
			if (r->roles && !rq->identity) {
				respond_error(rq, 401, "unauthenticated",
				              "sign in: send \"Authorization: Bearer TOKEN\"");
				return;
			}
			/* Browsers send any page's form or fetch to any address: a
			 * change must come from this server's pages or from no
			 * browser at all (bearer tokens, curl). */
			if (strcmp(method, "GET") != 0 && !request_same_origin(rq)) {
				respond_error(rq, 403, "cross-origin",
				              "a change must come from this server's pages (the "
				              "request's Origin is another site)");
				return;
			}
			if (r->roles && !(rq->roles & r->roles)) {
				struct strbuf need = STRBUF_INIT, has = STRBUF_INIT;
				role_names(r->roles, " or ", &need);
				role_names(rq->roles, ", ", &has);
				respond_error(rq, 403, "forbidden",
				              "this needs the %s role; token '%s' has %s", need.buf,
				              rq->identity, has.len ? has.buf : "no role");
				strbuf_release(&need);
				strbuf_release(&has);
				return;
			}
			if (!headers_only)
				r->fn(rq);
			return;
		}
	if (path_known)
		respond_error(rq, 405, "method-not-allowed", "%s is not allowed here; use %s",
		              rq->method, allow.buf);
	else
		respond_error(rq, 404, "not-found", "no such resource: %s", rq->url);
	strbuf_release(&allow);
}

/* ---- connections: head deadlines, limits, workers -------------------------------- */

/*
 * libmicrohttpd runs POLL_THREADS epoll threads that must never block, and
 * handlers may (a decision waits for the engine, a submission for the loop
 * thread). So a complete request is parked (MHD_suspend_connection) and
 * handed to one of WORKERS threads, which resumes the connection when its
 * answer is ready; live streams park between polls (server_sleep).
 *
 * A request head (request line and headers) must arrive whole within
 * requestHeadTimeoutSeconds of the connection opening or of the previous
 * answer: libmicrohttpd's own timeout restarts at every byte, so a client
 * sending a header line every few seconds would keep its connection for
 * ever. Without a token, the body counts too: the whole request must arrive
 * in that time. The deadline thread shuts such connections down. When connections
 * run short (7/8 of maxConnections open), each new one evicts the connection
 * that has been reading its head the longest, so slow heads from many
 * addresses cannot keep the others out.
 */

static void handle(struct request *rq, bool headers_only);

/* One open connection (libmicrohttpd's socket context). */
struct conn_slot {
	struct conn_slot *prev, *next; /* in srv->heads while in_heads */
	bool in_heads;                 /* reading a request head */
	int fd;                        /* valid until the CLOSED notice */
	int64_t since_ms;              /* monotonic: when this head began */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Under conns_lock. */
static void heads_unlink(struct server *srv, struct conn_slot *c)
{
	if (!c->in_heads)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->heads = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		srv->heads_end = c->prev;
	c->prev = c->next = NULL;
	c->in_heads = false;
}

/* Under conns_lock: c starts reading a head now, so it goes last. */
static void heads_append(struct server *srv, struct conn_slot *c)
{
	heads_unlink(srv, c);
	c->since_ms = mono_ms();
	c->prev = srv->heads_end;
	if (srv->heads_end)
		srv->heads_end->next = c;
	else
		srv->heads = c;
	srv->heads_end = c;
	c->in_heads = true;
}

/* Under conns_lock: ends c's connection. libmicrohttpd sees the socket end
 * and closes it; the fd stays c's until the CLOSED notice, which takes the
 * same lock. */
static void heads_cut(struct server *srv, struct conn_slot *c)
{
	heads_unlink(srv, c);
	shutdown(c->fd, SHUT_RDWR);
}

static struct conn_slot *conn_slot_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* The head of a request has arrived. */
static void conn_head_done(struct server *srv, struct MHD_Connection *conn)
{
	struct conn_slot *c = conn_slot_of(conn);
	if (!c)
		return;
	pthread_mutex_lock(&srv->conns_lock);
	heads_unlink(srv, c);
	pthread_mutex_unlock(&srv->conns_lock);
}

/* An answer has gone out: the next head's time starts now. */
static void conn_head_begin(struct server *srv, struct MHD_Connection *conn)
{
	struct conn_slot *c = conn_slot_of(conn);
	if (!c)
		return;
	pthread_mutex_lock(&srv->conns_lock);
	heads_append(srv, c);
	pthread_mutex_unlock(&srv->conns_lock);
}

static void notify_connection_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
                                 enum MHD_ConnectionNotificationCode code)
{
	struct server *srv = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct conn_slot *c = xcalloc(1, sizeof(*c));
		c->fd = ci ? ci->connect_fd : -1;
		pthread_mutex_lock(&srv->conns_lock);
		srv->nconns++;
		if (srv->nconns > srv->max_conns - srv->max_conns / 8 && srv->heads)
			heads_cut(srv, srv->heads); /* short of connections: the oldest head goes */
		if (c->fd >= 0)
			heads_append(srv, c);
		pthread_mutex_unlock(&srv->conns_lock);
		*socket_context = c;
		return;
	}
	struct conn_slot *c = *socket_context;
	if (!c)
		return;
	pthread_mutex_lock(&srv->conns_lock);
	heads_unlink(srv, c);
	srv->nconns--;
	pthread_mutex_unlock(&srv->conns_lock);
	free(c);
	*socket_context = NULL;
}

/* The deadline thread: cuts heads past their deadline, wakes parked streams. */
static void *deadline_main(void *arg)
{
	struct server *srv = arg;
	int64_t limit = (int64_t)server_config(srv)->head_timeout_s * 1000;
	for (;;) {
		usleep(DEADLINE_TICK_MS * 1000);
		int64_t now = mono_ms();
		struct request *due = NULL;
		pthread_mutex_lock(&srv->conns_lock);
		if (srv->conns_closing) {
			pthread_mutex_unlock(&srv->conns_lock);
			return NULL;
		}
		while (srv->heads && now - srv->heads->since_ms >= limit)
			heads_cut(srv, srv->heads);
		for (struct request **p = &srv->sleepers; *p;) {
			struct request *rq = *p;
			if (rq->wake_ms <= now) {
				*p = rq->next;
				rq->next = due;
				due = rq;
			} else {
				p = &rq->next;
			}
		}
		pthread_mutex_unlock(&srv->conns_lock);
		while (due) {
			struct request *rq = due;
			due = rq->next;
			rq->next = NULL;
			MHD_resume_connection(rq->conn);
		}
	}
}

bool server_sleep(struct server *srv, struct request *rq, int64_t delay_ms)
{
	if (!rq || !rq->conn)
		return false;
	pthread_mutex_lock(&srv->conns_lock);
	bool parked = !srv->conns_closing && srv->deadline_running;
	if (parked) {
		MHD_suspend_connection(rq->conn);
		rq->wake_ms = mono_ms() + delay_ms;
		rq->next = srv->sleepers;
		srv->sleepers = rq;
	}
	pthread_mutex_unlock(&srv->conns_lock);
	return parked;
}

/* A worker: answers parked requests, one at a time, and resumes them. */
static void *worker_main(void *arg)
{
	struct server *srv = arg;
	for (;;) {
		pthread_mutex_lock(&srv->queue_lock);
		while (!srv->queue && !srv->queue_closing)
			pthread_cond_wait(&srv->queue_cond, &srv->queue_lock);
		struct request *rq = srv->queue;
		if (!rq) {
			pthread_mutex_unlock(&srv->queue_lock);
			return NULL;
		}
		srv->queue = rq->next;
		if (!srv->queue)
			srv->queue_end = NULL;
		bool closing = srv->queue_closing;
		pthread_mutex_unlock(&srv->queue_lock);
		rq->next = NULL;
		if (closing)
			respond_error(rq, 503, "shutting-down", "the server is stopping");
		else
			handle(rq, false);
		rq->answered = true;
		MHD_resume_connection(rq->conn);
	}
}

/* Parks the connection and hands the complete request to a worker; false
 * when the server is stopping (answer it at once then). */
static bool queue_request(struct server *srv, struct request *rq)
{
	pthread_mutex_lock(&srv->queue_lock);
	bool queued = !srv->queue_closing && srv->nworkers;
	if (queued) {
		MHD_suspend_connection(rq->conn);
		rq->next = NULL;
		if (srv->queue_end)
			srv->queue_end->next = rq;
		else
			srv->queue = rq;
		srv->queue_end = rq;
		pthread_cond_signal(&srv->queue_cond);
	}
	pthread_mutex_unlock(&srv->queue_lock);
	return queued;
}

/* Starts the workers and the deadline thread. Returns 0 or -1. */
static int conns_start(struct server *srv)
{
	srv->workers = xcalloc(WORKERS, sizeof(*srv->workers));
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1u << 20);
	for (; srv->nworkers < WORKERS; srv->nworkers++)
		if (pthread_create(&srv->workers[srv->nworkers], &attr, worker_main, srv) != 0)
			break;
	if (pthread_create(&srv->deadline_thread, &attr, deadline_main, srv) == 0)
		srv->deadline_running = true;
	pthread_attr_destroy(&attr);
	return srv->nworkers && srv->deadline_running ? 0 : -1;
}

/* Before libmicrohttpd stops (it may not hold parked connections then): the
 * workers answer what is queued and end, parked streams are resumed (and
 * see that the server closes). */
static void conns_stop(struct server *srv)
{
	pthread_mutex_lock(&srv->queue_lock);
	srv->queue_closing = true;
	pthread_cond_broadcast(&srv->queue_cond);
	pthread_mutex_unlock(&srv->queue_lock);
	for (size_t i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i], NULL);
	srv->nworkers = 0;
	pthread_mutex_lock(&srv->conns_lock);
	srv->conns_closing = true;
	struct request *parked = srv->sleepers;
	srv->sleepers = NULL;
	pthread_mutex_unlock(&srv->conns_lock);
	while (parked) {
		struct request *rq = parked;
		parked = rq->next;
		rq->next = NULL;
		MHD_resume_connection(rq->conn);
	}
	if (srv->deadline_running)
		pthread_join(srv->deadline_thread, NULL);
	srv->deadline_running = false;
}

/*
 * libmicrohttpd's own messages. Those about clients that leave (a closed tab,
 * a dropped or cut connection) are routine and dropped; the rest go to the
 * server's log, with control characters (from a client's URL) replaced.
 */
static void mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	static const char *const routine[] = {
		"closed by remote side",
		"Failed to send data",
		"Socket has been disconnected",
		"Connection reset",
		"Broken pipe",
		"non-properly terminated",
		"socket is closed",
		"Failed to receive",
		"has been closed by remote",
		"incomplete request",
		NULL,
	};
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	for (int i = 0; routine[i]; i++)
		if (strstr(msg, routine[i]))
			return;
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	log_eventf("warning", "http", "%s", msg);
}

/* Each connection is a file descriptor: raises the open file limit to what
 * want connections need, as far as the hard limit allows; returns how many
 * connections fit. */
static unsigned fit_open_files(unsigned want)
{
	struct rlimit rl;
	const rlim_t spare = 128; /* the store, the listening socket, curl, children */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return want;
	rlim_t need = (rlim_t)want + spare;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rl.rlim_cur =
		    rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return want;
	return rl.rlim_cur > 2 * spare ? (unsigned)(rl.rlim_cur - spare) : (unsigned)spare;
}

/* ---- libmicrohttpd glue ----------------------------------------------------------- */

static void remote_address(struct MHD_Connection *c, char *out, size_t size)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, size, "?");
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
		          (socklen_t)size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		          out, (socklen_t)size);
}

static enum MHD_Result send_response(struct request *rq)
{
	struct MHD_Response *resp = rq->stream;
	if (!resp)
		resp = MHD_create_response_from_buffer(
		    rq->resp_len, rq->resp ? rq->resp : (void *)"", MHD_RESPMEM_MUST_COPY);
	if (rq->content_type)
		MHD_add_response_header(resp, "Content-Type", rq->content_type);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	/* Approval pages carry their token in the URL: it must never reach
	 * another site, but the page's own form posts should say where they
	 * come from (under "no-referrer" Chromium sends Origin: null). */
	MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	if (!rq->stream)
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (rq->location)
		MHD_add_response_header(resp, "Location", rq->location);
	if (rq->set_cookie)
		MHD_add_response_header(resp, "Set-Cookie", rq->set_cookie);
	if (rq->set_cookie_2)
		MHD_add_response_header(resp, "Set-Cookie", rq->set_cookie_2);
	if (rq->status == 405) {
		const char *m = strstr(rq->resp ? rq->resp : "", "use ");
		if (m) {
			char allow[64];
			snprintf(allow, sizeof(allow), "%.*s", (int)strcspn(m + 4, "\""), m + 4);
			MHD_add_response_header(resp, "Allow", allow);
		}
	}
	enum MHD_Result r = MHD_queue_response(rq->conn, rq->status, resp);
	MHD_destroy_response(resp);
	rq->stream = NULL;
	atomic_fetch_add(&rq->srv->http_requests, 1);
	if (rq->status >= 400)
		atomic_fetch_add(&rq->srv->http_errors, 1);
	return r;
}

/*
 * Without tokens everyone is trusted, so only names of this machine may
 * reach it: a page of another site whose name resolves to 127.0.0.1 (DNS
 * rebinding) sends its own name as Host and is refused. With tokens, any
 * Host (a proxy's) is fine.
 */
static bool host_allowed(struct request *rq)
{
	if (server_auth_on(rq->srv))
		return true;
	const char *host = request_header(rq, "Host");
	if (!host)
		return true; /* HTTP/1.0 without Host: not a browser */
	char name[256];
	size_t n = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
	if (n >= sizeof(name))
		return false;
	memcpy(name, host, n);
	name[n] = '\0';
	if (!strcmp(name, "127.0.0.1") || !strcmp(name, "localhost") || !strcmp(name, "[::1]"))
		return true;
	const char *pub = strstr(rq->srv->url, "://");
	return pub && !strncmp(pub + 3, name, n) &&
	       (pub[3 + n] == ':' || pub[3 + n] == '/' || pub[3 + n] == '\0');
}

/* The checks every request gets, then its route. */
static void handle(struct request *rq, bool headers_only)
{
	if (strstr(rq->url, "/../") || strstr(rq->url, "/./") || strstr(rq->url, "//"))
		respond_error(rq, 400, "bad-path",
		              "the path may not contain \"..\", \".\" or \"//\"");
	else if (!host_allowed(rq))
		respond_error(rq, 421, "wrong-host",
		              "this server answers for %s only (DNS rebinding protection)",
		              rq->srv->url);
	else
		dispatch(rq, headers_only);
}

/*
 * The first look at a request, on its headers alone: who asks, how large a
 * body it may send, and, when it announces a body, whether the request could
 * succeed at all. Refusing now (401, 403, 413, ...) means the body is never
 * read and a client that sent "Expect: 100-continue" gets no "100 Continue".
 */
static void request_head(struct request *rq)
{
	authenticate(rq);
	rq->body_limit = server_config(rq->srv)->max_body_bytes;
	if (!rq->identity && rq->body_limit > OPEN_BODY_MAX)
		rq->body_limit = OPEN_BODY_MAX; /* forms and sign-ins are small */
	const char *cl = request_header(rq, "Content-Length");
	const char *te = request_header(rq, "Transfer-Encoding");
	if (!te && (!cl || !strcmp(cl, "0")))
		return; /* no body: answered after the head, keeping the connection */
	rq->has_body = true;
	handle(rq, true); /* who may not, or where nothing is: 401, 403, 404, 405 */
	if (!rq->status && cl) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(cl, &end, 10);
		if (errno || *end || n > rq->body_limit)
			respond_error(rq, 413, "too-large", "the body is larger than %zu bytes%s",
			              rq->body_limit, rq->identity ? "" : " (before signing in)");
	}
}

/* Keeps a piece of the body, within the request's limit and, before
 * authentication, within the budget of all such bodies. */
static void request_body_add(struct request *rq, const char *data, size_t n)
{
	if (rq->too_big || rq->len + n > rq->body_limit) {
		rq->too_big = true;
		return;
	}
	if (!rq->identity) {
		unsigned long long all = atomic_fetch_add(&rq->srv->open_body_bytes, n) + n;
		rq->counted_body += n;
		if (all > OPEN_BODY_ALL) {
			atomic_fetch_sub(&rq->srv->open_body_bytes, rq->counted_body);
			rq->counted_body = 0;
			rq->too_big = rq->over_budget = true;
			return;
		}
	}
	if (rq->len + n + 1 > rq->cap) {
		rq->cap = (rq->len + n + 1) * 2;
		rq->body = xrealloc(rq->body, rq->cap);
	}
	memcpy(rq->body + rq->len, data, n);
	rq->len += n;
	rq->body[rq->len] = '\0';
}

static void respond_too_big(struct request *rq)
{
	if (rq->over_budget)
		respond_error(rq, 503, "busy",
		              "too many unauthenticated requests are sending bodies; try again");
	else
		respond_error(rq, 413, "too-large", "the body is larger than %zu bytes%s",
		              rq->body_limit, rq->identity ? "" : " (before signing in)");
}

static void request_free(struct request *rq)
{
	if (rq->stream)
		MHD_destroy_response(rq->stream);
	if (rq->counted_body)
		atomic_fetch_sub(&rq->srv->open_body_bytes, rq->counted_body);
	free(rq->body);
	free(rq->resp);
	free(rq->location);
	free(rq->set_cookie);
	free(rq->set_cookie_2);
}

void server_handle(struct server *srv, const struct request_input *in, unsigned *status,
                   char **body, size_t *len)
{
	struct request rq = { .srv = srv, .input = in, .method = in->method, .url = in->path };
	snprintf(rq.address, sizeof(rq.address), "127.0.0.1");
	request_head(&rq);
	if (!rq.status) {
		if (in->len)
			request_body_add(&rq, in->body, in->len);
		if (rq.too_big)
			respond_too_big(&rq);
		else
			handle(&rq, false);
	}
	*status = rq.status;
	*body = rq.resp ? rq.resp : xstrdup("");
	*len = rq.resp ? rq.resp_len : 0;
	rq.resp = NULL;
	request_free(&rq);
}

/* A read whose answer is kept in memory (api_quick()) is answered here, on
 * the poll thread, with every check handle() makes: no worker, no parking.
 * Returns false, having answered nothing, when it is not kept. */
static bool answer_quick(struct request *rq)
{
	if (!api_quick(rq))
		return false;
	rq->quick = true;
	handle(rq, false);
	rq->quick = false;
	return rq->status != 0;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct server *srv = cls;
	struct request *rq = *con_cls;
	if (!rq) {
		/* First call: headers only. Answering now closes the connection
		 * (PITFALLS): only refusals are answered now, the rest waits for
		 * the next call. */
		rq = xcalloc(1, sizeof(*rq));
		rq->srv = srv;
		rq->conn = conn;
		rq->method = method;
		rq->url = url;
		remote_address(conn, rq->address, sizeof(rq->address));
		*con_cls = rq;
		request_head(rq);
		/* Without a token, the body is part of the deadline too: a slow
		 * body would hold the connection as a slow head does. */
		if (rq->identity || !rq->has_body)
			conn_head_done(srv, conn);
		return rq->status ? send_response(rq) : MHD_YES;
	}
	if (rq->answered) /* by a worker, which resumed the connection */
		return send_response(rq);
	if (*upload_data_size) {
		request_body_add(rq, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	conn_head_done(srv, conn); /* the request is complete */
	if (rq->too_big)
		respond_too_big(rq);
	else if (answer_quick(rq))
		; /* from memory, on this thread */
	else if (queue_request(srv, rq))
		return MHD_YES; /* a worker answers it */
	else
		respond_error(rq, 503, "shutting-down", "the server is stopping");
	return send_response(rq);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct server *srv = cls;
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		conn_head_begin(srv, conn); /* keep-alive: the next head's time starts */
	struct request *rq = *con_cls;
	if (!rq)
		return;
	request_free(rq);
	free(rq);
	*con_cls = NULL;
}

/* Start, success and failure of every release go to the default channels. */
static void release_notice(struct server *srv, const char *id, const struct exec_state *state,
                           bool started)
{
	const struct plan *plan = state->plan;
	const char *status = exec_status_name(state->status);
	char subject[300], link[400];
	snprintf(subject, sizeof(subject), "Release %s %s%s%s", plan->name ? plan->name : id,
	         started ? "started" : status, plan->environment ? " in " : "",
	         plan->environment ? plan->environment : "");
	snprintf(link, sizeof(link), "%s/#/executions/%s", srv->url, id);
	char kind[16];
	snprintf(kind, sizeof(kind), "%s", started ? "started" : status);
	for (char *p = kind; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	/* an abort says who and why */
	char *message = NULL;
	if (state->status == EXEC_ABORTED && state->abort_ms)
		message = xstrfmt("%s\nIt was aborted by %s%s%s", subject,
		                  state->aborted_by ? state->aborted_by : "someone",
		                  state->abort_reason ? ": " : "",
		                  state->abort_reason ? state->abort_reason : "");
	struct notice n = { .kind = kind,
		            .subject = subject,
		            .message = message ? message : subject,
		            .execution_id = id,
		            .plan = plan->name,
		            .environment = plan->environment,
		            .approval_url = link };
	server_notify(srv, NULL, &n, -1, -1, 0);
	free(message);
}

/* ---- the observer ---------------------------------------------------------------- */

static void observe_events(void *arg, const char *id, const struct exec_state *state,
                           const struct event *events, size_t n)
{
	struct server *srv = arg;
	log_release_events(id, state, events, n);
	for (size_t i = 0; i < n; i++) {
		switch (events[i].type) {
		case EV_STEP_SUCCEEDED:
		case EV_STEP_FAILED:
		case EV_STEP_TIMED_OUT:
		case EV_STEP_CANCELLED: {
			const struct plan_step *ps =
			    &state->plan->stages[events[i].stage].steps[events[i].step];
			const char *what = events[i].type == EV_STEP_SUCCEEDED   ? "SUCCEEDED"
			                   : events[i].type == EV_STEP_FAILED    ? "FAILED"
			                   : events[i].type == EV_STEP_TIMED_OUT ? "TIMED_OUT"
			                                                         : "CANCELLED";
			char key[160];
			snprintf(key, sizeof(key), "%s %s", ps->type->name, what);
			pthread_mutex_lock(&srv->metrics_lock);
			json_t *v = json_object_get(srv->step_ends, key);
			json_object_set_new(srv->step_ends, key,
			                    json_integer(json_integer_value(v) + 1));
			pthread_mutex_unlock(&srv->metrics_lock);
			break;
		}
		case EV_HUMAN_DECISION: {
			const struct step_state *st =
			    &state->steps[events[i].stage][events[i].step];
			if (st->started_ms && events[i].time_ms >= st->started_ms) {
				atomic_fetch_add(&srv->approval_wait_count, 1);
				atomic_fetch_add(
				    &srv->approval_wait_ms_sum,
				    (unsigned long long)(events[i].time_ms - st->started_ms));
			}
			break;
		}
		case EV_EXECUTION_STARTED:
			release_notice(srv, id, state, true);
			break;
		case EV_EXECUTION_FINISHED:
			inbox_finished(srv->inbox, id, exec_status_name(state->status));
			inbox_finished(srv->inbox_s3, id, exec_status_name(state->status));
			release_notice(srv, id, state, false);
			break;
		default:
			break;
		}
	}
	approvals_on_events(srv, id, state, events, n);
}

static void observe_error(void *arg, const char *message)
{
	(void)arg;
	log_event("error", "server.error", message, NULL);
}

static void observe_note(void *arg, const char *message)
{
	(void)arg;
	log_event("info", "server.info", message, NULL);
}

/* On the loop thread, five times a second: systemd's watchdog is fed from
 * here, so a loop that hangs gets the service restarted. */
static void observe_tick(void *arg)
{
	(void)arg;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	service_watchdog((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* ---- lifetime ------------------------------------------------------------------------ */

struct server *server_new(const struct serve_config *config, const char *store_path)
{
	struct server *srv = xcalloc(1, sizeof(*srv));
	srv->cfg = config;
	srv->store_path = xstrdup(store_path);
	srv->answers = answers_new(store_path);
	pthread_mutex_init(&srv->pool_lock, NULL);
	pthread_mutex_init(&srv->metrics_lock, NULL);
	srv->step_ends = json_object();
	srv->slack_replay = slack_replay_new();
	pthread_mutex_init(&srv->jobs_lock, NULL);
	pthread_cond_init(&srv->jobs_done, NULL);
	pthread_mutex_init(&srv->conns_lock, NULL);
	pthread_mutex_init(&srv->queue_lock, NULL);
	pthread_cond_init(&srv->queue_cond, NULL);
	srv->max_conns = config->max_connections;
	srv->observer = (struct runtime_observer){
		.on_events = observe_events,
		.on_error = observe_error,
		.on_note = observe_note,
		.on_tick = observe_tick,
		.arg = srv,
	};
	if (getrandom(srv->secret, sizeof(srv->secret), 0) != (ssize_t)sizeof(srv->secret) ||
	    getrandom(srv->form_secret, sizeof(srv->form_secret), 0) !=
	        (ssize_t)sizeof(srv->form_secret))
		abort(); /* no CSPRNG: nothing safe can be served */
	if (config->oidc.issuer)
		srv->oidc = oidc_new(&config->oidc);
	return srv;
}

void server_set_form_key(struct server *srv, const unsigned char key[32])
{
	memcpy(srv->form_secret, key, sizeof(srv->form_secret));
}

const struct runtime_observer *server_observer(struct server *srv)
{
	return &srv->observer;
}

const char *server_url(const struct server *srv)
{
	return srv->url;
}

const char *server_listen_url(const struct server *srv)
{
	return srv->listen_url;
}

/* The next round of taking over in RUNTIME_TAKE_OVER_MS, give or take
 * 10 %: nodes started together do not keep looking at the same moment. */
static uint64_t adopt_delay(void)
{
	uint16_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = 0;
	return RUNTIME_TAKE_OVER_MS * 9 / 10 + (uint64_t)r % (RUNTIME_TAKE_OVER_MS / 5 + 1);
}

static void adopt_cb(uv_timer_t *t)
{
	struct server *srv = t->data;
	size_t n;
	struct strbuf err = STRBUF_INIT, ids = STRBUF_INIT;
	runtime_take_over(srv->rt, &n, &ids, &err); /* releases whose owner died */
	if (n) {
		char count[24];
		atomic_fetch_add(&srv->releases_taken_over, n);
		snprintf(count, sizeof(count), "%zu", n);
		if (n > RUNTIME_TAKEN_IDS_MAX)
			strbuf_addstr(&ids, ",...");
		log_event("info", "releases.taken-over", NULL, "count", count, "releases", ids.buf,
		          NULL);
	}
	strbuf_release(&ids);
	strbuf_release(&err);
	uv_timer_start(t, adopt_cb, adopt_delay(), 0);
}

/* The daemon: epoll threads, the limits, and the hooks of "connections". */
static struct MHD_Daemon *start_daemon(struct server *srv, unsigned flags,
                                       const struct sockaddr *addr)
{
	const struct serve_config *c = srv->cfg;
	srv->max_conns = fit_open_files(c->max_connections);
	if (srv->max_conns < c->max_connections)
		fprintf(stderr,
		        "steppy serve: the open file limit allows %u connections, not %u "
		        "(maxConnections)\n",
		        srv->max_conns, c->max_connections);
	unsigned per_address =
	    c->max_per_address < srv->max_conns ? c->max_per_address : srv->max_conns / 2;
	if (conns_start(srv) < 0)
		return NULL;
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key },
		{ MHD_OPTION_END, 0, NULL },
	};
	return MHD_start_daemon(
	    flags, (uint16_t)c->listen_port, NULL, NULL, access_cb, srv, MHD_OPTION_EXTERNAL_LOGGER,
	    mhd_log_cb, NULL, MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)POLL_THREADS, MHD_OPTION_CONNECTION_TIMEOUT, c->client_timeout_s,
	    MHD_OPTION_CONNECTION_LIMIT, srv->max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    per_address, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, srv, MHD_OPTION_NOTIFY_CONNECTION,
	    notify_connection_cb, srv, MHD_OPTION_ARRAY, c->tls_certificate ? tls : tls + 2,
	    MHD_OPTION_END);
}

static bool loopback(const char *host)
{
	return !strcmp(host, "127.0.0.1") || !strcmp(host, "::1") || !strcmp(host, "localhost");
}

int server_start(struct server *srv, struct runtime *rt, struct strbuf *err)
{
	const struct serve_config *c = srv->cfg;
	srv->rt = rt;
	srv->loop = runtime_loop(rt);
	if (!server_auth_on(srv) && !loopback(c->listen_host)) {
		strbuf_addf(err,
		            "refusing to listen on %s without API tokens: anyone could start and "
		            "approve releases. Configure \"tokens\" (steppy token), or listen on "
		            "127.0.0.1",
		            c->listen_host);
		return SP_EUSAGE;
	}
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} addr;
	memset(&addr, 0, sizeof(addr));
	const char *host = !strcmp(c->listen_host, "localhost") ? "127.0.0.1" : c->listen_host;
	unsigned flags =
	    MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (inet_pton(AF_INET, host, &addr.in4.sin_addr) == 1) {
		addr.in4.sin_family = AF_INET;
		addr.in4.sin_port = htons((uint16_t)c->listen_port);
	} else if (inet_pton(AF_INET6, host, &addr.in6.sin6_addr) == 1) {
		addr.in6.sin6_family = AF_INET6;
		addr.in6.sin6_port = htons((uint16_t)c->listen_port);
		flags |= MHD_USE_IPv6;
	} else {
		strbuf_addf(err, "cannot listen on \"%s\": give an IP address", c->listen_host);
		return SP_EUSAGE;
	}
	if (c->tls_certificate) {
		struct strbuf e2 = STRBUF_INIT;
		size_t len;
		if (read_file_capped(c->tls_certificate, 1u << 20, &srv->tls_cert, &len, &e2) < 0 ||
		    read_file_capped(c->tls_key, 1u << 20, &srv->tls_key, &len, &e2) < 0) {
			strbuf_addf(err, "tls: %s", e2.buf);
			strbuf_release(&e2);
			return SP_EIO;
		}
		strbuf_release(&e2);
		flags |= MHD_USE_TLS;
	}
	uv_async_init(srv->loop, &srv->async, async_cb);
	srv->handles = true;
	/* Every channel: the configuration's, and the built-in ones of Notify steps. */
	struct step_services *svc = runtime_services(rt);
	struct notify_hub_options ho = { .channels = c->channel_list,
		                         .nchannels = c->nchannels,
		                         .defaults = (const char *const *)c->default_names,
		                         .ndefaults = c->ndefault_names,
		                         .log_path = svc->notify_log };
	srv->notifier = notifier_new(srv->loop, svc->aws);
	ho.notifier = srv->notifier;
	srv->notify = notify_hub_new(srv->loop, svc->aws, &ho);
	svc->notify = srv->notify;
	srv->async.data = srv;
	uv_timer_init(srv->loop, &srv->adopt_timer);
	srv->adopt_timer.data = srv;
	uv_timer_start(&srv->adopt_timer, adopt_cb, adopt_delay(), 0);
	uv_unref((uv_handle_t *)&srv->adopt_timer);
	if (c->inbox_directory || c->inbox_s3) {
		srv->loop_store = server_store_get(srv, err);
		if (!srv->loop_store)
			return SP_ESTORE;
		if (c->inbox_directory)
			srv->inbox = inbox_start(srv->loop, rt, srv->loop_store, c->inbox_directory,
			                         c->inbox_poll_ms, c->channel_list, c->nchannels);
		if (c->inbox_s3)
			srv->inbox_s3 =
			    inbox_start(srv->loop, rt, srv->loop_store, c->inbox_s3,
			                c->inbox_poll_ms, c->channel_list, c->nchannels);
	}
	srv->mhd = start_daemon(srv, flags, &addr.sa);
	if (!srv->mhd) {
		strbuf_addf(err, "cannot listen on %s:%d (in use, or not allowed)", c->listen_host,
		            c->listen_port);
		return SP_EIO;
	}
	int port = c->listen_port;
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (di)
		port = di->port;
	snprintf(srv->listen_url, sizeof(srv->listen_url), "%s://%s%s%s:%d",
	         c->tls_certificate ? "https" : "http", strchr(host, ':') ? "[" : "", host,
	         strchr(host, ':') ? "]" : "", port);
	snprintf(srv->url, sizeof(srv->url), "%s", c->public_url ? c->public_url : srv->listen_url);
	size_t n = strlen(srv->url);
	while (n && srv->url[n - 1] == '/')
		srv->url[--n] = '\0';
	return 0;
}

static void handle_close_cb(uv_handle_t *h)
{
	(void)h;
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	pthread_mutex_lock(&srv->jobs_lock);
	srv->closing = true;
	pthread_cond_broadcast(&srv->jobs_done);
	pthread_mutex_unlock(&srv->jobs_lock);
	conns_stop(srv);
	if (srv->mhd)
		MHD_stop_daemon(srv->mhd);
	inbox_stop(srv->inbox);
	inbox_stop(srv->inbox_s3);
	if (srv->notify) {
		runtime_services(srv->rt)->notify = NULL;
		notify_hub_free(srv->notify);
	}
	reload_stop(srv);
	notifier_free(srv->notifier); /* after every hub that sends with it */
	srv->notifier = NULL;
	if (srv->handles) {
		uv_close((uv_handle_t *)&srv->async, handle_close_cb);
		uv_close((uv_handle_t *)&srv->adopt_timer, handle_close_cb);
		uv_run(srv->loop, UV_RUN_NOWAIT);
	}
	for (size_t i = 0; i < srv->npool; i++)
		store_close(srv->pool[i]);
	store_close(srv->loop_store);
	answers_free(srv->answers);
	free(srv->pool);
	oidc_free(srv->oidc);
	free(srv->tls_cert);
	free(srv->tls_key);
	free(srv->store_path);
	pthread_mutex_destroy(&srv->pool_lock);
	pthread_mutex_destroy(&srv->metrics_lock);
	json_decref(srv->step_ends);
	slack_replay_free(srv->slack_replay);
	pthread_mutex_destroy(&srv->jobs_lock);
	pthread_cond_destroy(&srv->jobs_done);
	pthread_mutex_destroy(&srv->conns_lock);
	pthread_mutex_destroy(&srv->queue_lock);
	pthread_cond_destroy(&srv->queue_cond);
	free(srv->workers);
	reload_release(srv);
	free(srv);
}
