/*
 * cmd-serve.c - `steppy serve` (the engine with the HTTP API, approval pages
 * and dashboard) and `steppy token` (a new API token and its hash for the
 * configuration).
 */
#include "cli/cli.h"

#include "runtime/runtime.h"
#include "server/config.h"
#include "server/log.h"
#include "server/server.h"
#include "server/service.h"
#include "steps/plugin.h"
#include "steps/services.h"
#include "util/alloc.h"
#include "util/error.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>

extern char **environ;

const char serve_help[] =
    "usage: steppy serve [--config FILE] [--listen HOST:PORT] [--db PATH]\n"
    "                    [--log-format text|json]\n"
    "\n"
    "Runs releases and serves them over HTTP: the JSON API under /api/v1\n"
    "(docs/openapi.yaml), approval pages for the links sent when a Human step\n"
    "waits, the live dashboard at /, /healthz and /metrics (Prometheus).\n"
    "Unfinished releases in the store are resumed at start and whenever their\n"
    "steppy process has died. SIGTERM or Ctrl-C stops gracefully: nothing\n"
    "running is lost, and the next start resumes it.\n"
    "\n"
    "options:\n"
    "  --config FILE      the configuration (YAML or JSON, docs/configuration.md)\n"
    "  --listen HOST:PORT where to listen (default 127.0.0.1:8080; port 0: any free)\n"
    "  --db PATH          the store (default: the configuration's \"store\", else as for\n"
    "                     steppy run)\n"
    "  --log-format F     the log on stderr: text (default) or json, one object\n"
    "                     a line\n"
    "  -h, --help         show this help\n"
    "\n"
    "Without API tokens in the configuration everyone who can reach the server\n"
    "may do everything, so it then listens on loopback addresses only.\n"
    "Plans with Exec steps are refused unless the configuration's exec.enabled\n"
    "is true: they run commands as the server's user.\n"
    "\n"
    "exit status: 0 stopped, 1 invalid configuration, 2 usage, store or I/O error\n";

const char token_help[] =
    "usage: steppy token NAME ROLE...\n"
    "\n"
    "Makes a new API token for NAME (the identity it gives: who started or\n"
    "approved a release) with the given roles: viewer, operator (submit,\n"
    "abort, retry), approver (approve and reject), admin (all). Prints the\n"
    "token, to give to its owner, and the lines for the \"tokens\" list of the\n"
    "configuration, which holds only the token's SHA-256.\n";

/* ---- secrets of the environment ---------------------------------------- */

struct strvec {
	char **v; /* NULL-terminated */
	size_t n;
};

static void strvec_add_env(struct strvec *sv, const char *name)
{
	const char *value = getenv(name);
	if (!value || !*value)
		return;
	for (size_t i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], value))
			return;
	sv->v = xreallocarray(sv->v, sv->n + 2, sizeof(*sv->v));
	sv->v[sv->n++] = xstrdup(value);
	sv->v[sv->n] = NULL;
}

/* Adds the values of the variables a configuration names: any "...Env"
 * key's value and the values of "headersFromEnv" (channels' secrets). */
static void add_named_env(struct strvec *sv, const struct doc_node *node, bool names)
{
	if (!node)
		return;
	if (node->kind == DOC_STRING && names)
		strvec_add_env(sv, node->u.string.s);
	if (node->kind == DOC_ARRAY)
		for (size_t i = 0; i < node->u.array.len; i++)
			add_named_env(sv, node->u.array.items[i], false);
	if (node->kind != DOC_OBJECT)
		return;
	for (size_t i = 0; i < node->u.object.len; i++) {
		const char *key = node->u.object.members[i].key;
		size_t n = strlen(key);
		bool env = names || (n > 3 && !strcmp(key + n - 3, "Env")) ||
		           !strcmp(key, "headersFromEnv");
		add_named_env(sv, node->u.object.members[i].value, env);
	}
}

/* The secret values of the server's environment, to mask in Exec output:
 * AWS credentials, every STEPPY_* value, the variables the configuration
 * names. Caller frees each and the array. */
static char **environment_secrets(const struct serve_config *cfg)
{
	struct strvec sv = { xcalloc(1, sizeof(char *)), 0 };
	strvec_add_env(&sv, "AWS_SECRET_ACCESS_KEY");
	strvec_add_env(&sv, "AWS_SESSION_TOKEN");
	for (char **e = environ; *e; e++) {
		if (strncmp(*e, "STEPPY_", 7) != 0 || !strchr(*e, '='))
			continue;
		char *name = xstrndup(*e, (size_t)(strchr(*e, '=') - *e));
		strvec_add_env(&sv, name);
		free(name);
	}
	if (cfg->doc && cfg->doc->root)
		add_named_env(&sv, cfg->doc->root, false);
	return sv.v;
}

int cmd_token(int argc, char **argv, const struct cli_ctx *ctx)
{
	(void)ctx; /* CLI_RAW */
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(token_help, stdout);
		return EXIT_OK;
	}
	if (argc < 3)
		return usage_error(
		    "token takes a name and at least one role (see steppy token --help)");
	for (const char *p = argv[1]; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._@-", *p)))
			return usage_error(
			    "a token's name is letters, digits and . _ @ -, not \"%s\"", argv[1]);
	if (strlen(argv[1]) > 100)
		return usage_error("a token's name is at most 100 characters");
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "viewer") && strcmp(argv[i], "operator") &&
		    strcmp(argv[i], "approver") && strcmp(argv[i], "admin"))
			return usage_error(
			    "\"%s\" is not a role: viewer, operator, approver or admin", argv[i]);
	unsigned char raw[24], hash[SHA256_DIGEST_LENGTH];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		fprintf(stderr, "steppy: no random numbers from the kernel\n");
		return EXIT_USAGE;
	}
	char token[64];
	int n = snprintf(token, sizeof(token), "stp_");
	for (size_t i = 0; i < sizeof(raw); i++)
		n += snprintf(token + n, sizeof(token) - (size_t)n, "%02x", raw[i]);
	SHA256((const unsigned char *)token, strlen(token), hash);
	printf("token: %s\n\nfor the configuration:\n  - name: %s\n    sha256: ", token, argv[1]);
	for (size_t i = 0; i < sizeof(hash); i++)
		printf("%02x", hash[i]);
	printf("\n    roles: [");
	for (int i = 2; i < argc; i++)
		printf("%s%s", i > 2 ? ", " : "", argv[i]);
	printf("]\n");
	return EXIT_OK;
}

const struct option serve_options[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "log-format", required_argument, NULL, 'F' },
	{ NULL, 0, NULL, 0 },
};

/*
 * The configuration: --config's file (or the defaults), --listen over its
 * address, its AWS defaults put in the environment unless that says
 * otherwise. Returns EXIT_OK, or prints why not and returns the exit code
 * (cfg released).
 */
static int serve_configure(const char *config_path, const char *listen, struct serve_config *cfg)
{
	if (config_path) {
		struct diag_list dl = DIAG_LIST_INIT;
		int r = serve_config_load(config_path, cfg, &dl);
		if (r < 0) {
			diag_list_sort(&dl);
			diag_print_text(stderr, &dl, cfg->doc, use_colour(stderr));
			fprintf(stderr, "%s: invalid configuration; the server does not start\n",
			        config_path);
			serve_config_release(cfg);
		}
		diag_list_release(&dl);
		if (r < 0)
			return EXIT_INVALID;
	} else {
		serve_config_defaults(cfg);
	}
	if (cfg->plugin_path) {
		/* plugin types from the configuration's directories too */
		struct strbuf warnings = STRBUF_INIT;
		plugins_load(cfg->plugin_path, &warnings);
		for (const char *line = warnings.buf; *line;) {
			size_t n = strcspn(line, "\n");
			fprintf(stderr, "steppy: warning: %.*s\n", (int)n, line);
			line += n + (line[n] == '\n');
		}
		strbuf_release(&warnings);
	}
	static char host[256];
	if (listen && parse_listen(listen, host, sizeof(host), &cfg->listen_port) < 0) {
		serve_config_release(cfg);
		return usage_error("--listen takes HOST:PORT, not \"%s\"", listen);
	}
	if (listen)
		cfg->listen_host = host;
	if (cfg->aws_region && !getenv("AWS_REGION"))
		setenv("AWS_REGION", cfg->aws_region, 1);
	if (cfg->aws_profile && !getenv("AWS_PROFILE"))
		setenv("AWS_PROFILE", cfg->aws_profile, 1);
	return EXIT_OK;
}

/* Opens the store of --db or the configuration and checks it: a damaged file
 * would answer with errors (or worse, nothing) for days, so it is refused
 * now, naming the file. Returns an exit code (printed). */
static int serve_open_store(const char *db, const struct serve_config *cfg, struct store **ret,
                            char **ret_path)
{
	int code = cli_open_store(db ? db : cfg->store, ret, ret_path);
	if (code != EXIT_OK)
		return code;
	if (cfg->secret_key_file)
		store_set_key_file(*ret, cfg->secret_key_file);
	struct strbuf err = STRBUF_INIT;
	/* The store's key, or none made here unless the store has none yet: a
	 * node with its own key would seal secrets the others cannot open. */
	bool made = false;
	char *key = cfg->secret_key_file ? xstrdup(cfg->secret_key_file) : cli_key_path();
	int r = store_key_check(*ret, STORE_KEY_MAKE, &made, &err);
	if (r == 0 && made)
		log_eventf("warning", "secret-key.made",
		           "warning: made a new secret key file %s: it seals secret values and "
		           "signs approval forms; every other node that shares this store must use "
		           "a copy of it (secretKeyFile), or it cannot resume the releases of this "
		           "one, nor this one theirs",
		           key);
	free(key);
	if (r == 0)
		r = store_check(*ret, &err);
	if (r < 0) {
		fprintf(stderr, "steppy serve: %s; the server does not start\n", err.buf);
		store_close(*ret);
		*ret = NULL;
		free(*ret_path);
		*ret_path = NULL;
		code = EXIT_USAGE;
	}
	strbuf_release(&err);
	return code;
}

/* Approval forms signed under a key derived from the secret key file, so
 * that every node sharing it (and a restarted server) accepts them; when
 * the file cannot be had, this process's own key, and a log line. */
static void share_form_key(struct server *srv, struct store *st)
{
	unsigned char key[32];
	struct strbuf err = STRBUF_INIT;
	if (store_derive_key(st, "approval forms", key, &err) == 0)
		server_set_form_key(srv, key);
	else
		fprintf(stderr,
		        "steppy serve: approval forms are signed with a key of this process only "
		        "(%s): a form is accepted only by the server that showed it\n",
		        err.buf);
	OPENSSL_cleanse(key, sizeof(key));
	strbuf_release(&err);
}

/*
 * Starts the runtime and the server on st, resumes what is unfinished and
 * runs until a signal stops it. Returns EXIT_OK, or EXIT_USAGE when it could
 * not start or stopped while the store refused events (never 0 then: a
 * service manager restarts on non-zero). SIGHUP reloads config_path (when
 * not NULL): its tokens, channels and people.
 */
static int serve_run(struct store *st, const char *path, struct serve_config *cfg,
                     const char *config_path)
{
	char *notify_log = cli_notify_log(path);
	struct server *srv = server_new(cfg, path);
	share_form_key(srv, st);
	/* Exec commands run as this user: keep them (and anything else of
	 * this user) from reading the server's memory and /proc/PID/environ. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	char **secrets = environment_secrets(cfg);
	log_set_secrets((const char *const *)secrets);
	/* The runtime's people directory: SIGHUP replaces it (reload.c). */
	struct people live_people = cfg->people;
	struct runtime_options opts = { .notify_log = notify_log,
		                        .observer = server_observer(srv),
		                        .keep_running = true,
		                        .exec_policy = &cfg->exec,
		                        .exec_minimal_env = true,
		                        .secret_values = (const char *const *)secrets,
		                        .people = &live_people,
		                        .retry_store = true };
	struct runtime *rt = NULL;
	struct strbuf err = STRBUF_INIT;
	int code = EXIT_USAGE;
	int r = runtime_new(st, &opts, &rt, &err);
	if (r == 0)
		step_services_open(runtime_services(rt));
	if (r == 0)
		r = server_start(srv, rt, &err);
	if (r == 0)
		r = server_watch_reload(srv, config_path, &live_people);
	/* Tell local commands that decisions on this store have owners now
	 * (steppy approve refuses to decide for approvers without --force). */
	if (r == 0)
		r = store_meta_set(st, "serve.tokens", cfg->ntokens ? server_url(srv) : NULL, &err);
	if (r == 0) {
		size_t n = 0;
		runtime_adopt_all(rt, &n, &err);
		char *shown = store_display_name(path); /* a URL's password masked */
		printf(
		    "steppy serve: listening on %s (store %s); %zu unfinished release%s resumed\n",
		    server_listen_url(srv), shown, n, n == 1 ? "" : "s");
		free(shown);
		if (strcmp(server_url(srv), server_listen_url(srv)) != 0)
			printf("steppy serve: public URL %s\n", server_url(srv));
		fflush(stdout);
		service_ready(server_url(srv));
		int stopped = runtime_run(rt);
		service_stopping();
		if (stopped == 2) {
			fprintf(stderr, "steppy serve: stopped while the store refused events; "
			                "the next start continues from what was recorded\n");
		} else {
			printf("steppy serve: stopped\n");
			code = EXIT_OK;
		}
	} else {
		fprintf(stderr, "steppy serve: %s\n", err.buf);
	}
	server_free(srv);
	runtime_free(rt);
	strbuf_release(&err);
	for (size_t i = 0; secrets[i]; i++)
		free(secrets[i]);
	log_set_secrets(NULL);
	free(secrets);
	free(notify_log);
	return code;
}

int cmd_serve(int argc, char **argv, const struct cli_ctx *ctx)
{
	(void)argv;
	const char *listen = NULL;
	enum log_format log_format = LOG_TEXT;
	for (size_t i = 0; i < ctx->nopts; i++) {
		if (ctx->opts[i].id == 'l')
			listen = ctx->opts[i].arg;
		if (ctx->opts[i].id == 'F' && log_parse_format(ctx->opts[i].arg, &log_format) < 0)
			return usage_error("--log-format takes text or json, not \"%s\"",
			                   ctx->opts[i].arg);
	}
	log_set_format(log_format);
	if (argc != 1)
		return usage_error("serve takes no arguments (see steppy serve --help)");
	struct serve_config cfg;
	int code = serve_configure(ctx->config, listen, &cfg);
	if (code != EXIT_OK)
		return code;
	struct store *st = NULL;
	char *path = NULL;
	code = serve_open_store(ctx->db, &cfg, &st, &path);
	if (code == EXIT_OK)
		code = serve_run(st, path, &cfg, ctx->config);
	store_close(st);
	free(path);
	serve_config_release(&cfg);
	return code;
}
