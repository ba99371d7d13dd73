/*
 * plugin.c - plugin step types (plugin.h): reading describe answers into
 * a step type with a field table, the plan-language hooks of plugin types
 * (validate: patterns; describe; bind), and finding plugins on the plugin
 * path at start-up. The runner is plugin-run.c; the protocol is
 * docs/plugins.md.
 *
 * Everything a plugin says is hostile: its describe answer is bounded
 * (PLUGIN_DESCRIBE_MAX bytes, PLUGIN_MAX_FIELDS fields), names are checked
 * against a strict alphabet, a name taken by a built-in type (or an earlier
 * plugin) is refused, and files that others could have written (symlinks,
 * group or world writable files or directories, files owned by another
 * user) are never run.
 *
 * describe runs at every start of steppy (all plugins at once, on a
 * private loop): measured at ~5 ms for one POSIX sh plugin and ~30 ms for
 * ten on 2 cores, so a cache would buy little and could go stale
 * (docs/plugins.md, "Discovery").
 */
#include "steps/plugin.h"

#include "plan/doc-json.h"
#include "runtime/runner.h"
#include "util/alloc.h"
#include "util/error.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fields every step has (plan/validate.c): a plugin may not declare them. */
static const char *const common_fields[] = { "type",           "name",       "description",
	                                     "timeoutSeconds", "retry",      "region",
	                                     "roleArn",        "externalId", NULL };

static bool is_name(const char *s, size_t max, bool underscore)
{
	size_t n = strlen(s);
	if (!n || n > max || !isalpha((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !(underscore && (s[i] == '_' || s[i] == '-')))
			return false;
	return true;
}

void plugin_type_free(struct plugin_type *pt)
{
	if (!pt)
		return;
	for (size_t i = 0; i < pt->nfields; i++) {
		free((char *)pt->fields[i].name);
		if (pt->patterns && pt->patterns[i]) {
			free(pt->patterns[i]);
			regfree(&pt->regex[i]);
		}
		for (size_t k = 0; pt->choices && pt->choices[i] && pt->choices[i][k]; k++)
			free(pt->choices[i][k]);
		if (pt->choices)
			free(pt->choices[i]);
	}
	free(pt->fields);
	free(pt->patterns);
	free(pt->regex);
	free(pt->choices);
	for (size_t i = 0; pt->env && pt->env[i]; i++)
		free(pt->env[i]);
	free(pt->env);
	free(pt->path);
	free(pt->name);
	free(pt->summary);
	free(pt);
}

static const struct {
	const char *name;
	unsigned types;
} field_types[] = {
	{ "string", T_STRING }, { "integer", T_INTEGER }, { "number", T_NUMBER },
	{ "boolean", T_BOOL },  { "object", T_OBJECT },   { "list", T_ARRAY },
};

/* A field's "enum" (choices, not NULL) into pt's field i. */
static int parse_enum(struct plugin_type *pt, size_t i, const char *name, unsigned types,
                      json_t *choices, struct strbuf *err)
{
	size_t n = json_array_size(choices);
	if (types != T_STRING || !json_is_array(choices) || !n || n > 100) {
		strbuf_addf(err,
		            "field \"%s\": enum must be a list of 1 to 100 strings, on "
		            "a string field",
		            name);
		return SP_EINVAL;
	}
	pt->choices[i] = xcalloc(n + 1, sizeof(char *));
	for (size_t k = 0; k < n; k++) {
		const char *c = json_string_value(json_array_get(choices, k));
		if (!c || strlen(c) > 200) {
			strbuf_addf(err,
			            "field \"%s\": enum[%zu] is not a string (of at most "
			            "200 characters)",
			            name, k);
			return SP_EINVAL;
		}
		pt->choices[i][k] = xstrdup(c);
	}
	pt->fields[i].choices = (const char *const *)pt->choices[i];
	return 0;
}

/* A field's "pattern" (not NULL) into pt's field i. */
static int parse_pattern(struct plugin_type *pt, size_t i, const char *name, unsigned types,
                         json_t *pattern, struct strbuf *err)
{
	const char *p = json_string_value(pattern);
	if (types != T_STRING || !p || strlen(p) > 1000) {
		strbuf_addf(err,
		            "field \"%s\": pattern must be a string (at most 1000 "
		            "characters), on a string field",
		            name);
		return SP_EINVAL;
	}
	int rc = regcomp(&pt->regex[i], p, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		char msg[200];
		regerror(rc, &pt->regex[i], msg, sizeof(msg));
		regfree(&pt->regex[i]);
		strbuf_addf(err,
		            "field \"%s\": pattern is not a POSIX extended regular "
		            "expression: %s",
		            name, msg);
		return SP_EINVAL;
	}
	pt->patterns[i] = xstrdup(p);
	return 0;
}

/* Reads fields[i] of a describe answer into pt. */
static int parse_field(struct plugin_type *pt, size_t i, json_t *f, struct strbuf *err)
{
	if (!json_is_object(f)) {
		strbuf_addf(err, "fields[%zu] is not an object", i);
		return SP_EINVAL;
	}
	const char *key;
	json_t *val;
	json_object_foreach(f, key, val)
	{
		static const char *const known[] = { "name",    "type",    "required",    "enum",
			                             "pattern", "summary", "description", NULL };
		bool ok = false;
		for (size_t k = 0; known[k]; k++)
			ok = ok || !strcmp(known[k], key);
		if (!ok) {
			strbuf_addf(err, "fields[%zu] has an unknown member \"%.40s\"", i, key);
			return SP_EINVAL;
		}
	}
	const char *name = json_string_value(json_object_get(f, "name"));
	if (!name || !is_name(name, 64, true)) {
		strbuf_addf(err,
		            "fields[%zu].name must be a name (a letter, then letters, digits, _ "
		            "or -; at most 64)",
		            i);
		return SP_EINVAL;
	}
	for (size_t k = 0; common_fields[k]; k++)
		if (!strcmp(common_fields[k], name)) {
			strbuf_addf(err,
			            "field \"%s\" is a field of every step; a plugin may not "
			            "declare it",
			            name);
			return SP_EINVAL;
		}
	for (size_t k = 0; k < i; k++)
		if (!strcmp(pt->fields[k].name, name)) {
			strbuf_addf(err, "field \"%s\" is declared twice", name);
			return SP_EINVAL;
		}
	const char *type = json_string_value(json_object_get(f, "type"));
	unsigned types = 0;
	for (size_t k = 0; type && k < sizeof(field_types) / sizeof(field_types[0]); k++)
		if (!strcmp(field_types[k].name, type))
			types = field_types[k].types;
	if (!types) {
		strbuf_addf(err,
		            "field \"%s\": type must be string, integer, number, boolean, object "
		            "or list",
		            name);
		return SP_EINVAL;
	}
	json_t *req = json_object_get(f, "required");
	if (req && !json_is_boolean(req)) {
		strbuf_addf(err, "field \"%s\": required must be true or false", name);
		return SP_EINVAL;
	}
	pt->fields[i].name = xstrdup(name);
	pt->fields[i].types = types;
	pt->fields[i].flags = json_is_true(req) ? F_REQUIRED : 0;
	json_t *choices = json_object_get(f, "enum");
	if (choices && parse_enum(pt, i, name, types, choices, err) < 0)
		return SP_EINVAL;
	json_t *pattern = json_object_get(f, "pattern");
	if (pattern && parse_pattern(pt, i, name, types, pattern, err) < 0)
		return SP_EINVAL;
	return 0;
}

static void plugin_validate(struct vctx *v, const struct doc_node *step);
static void plugin_describe(const struct doc_node *step, struct strbuf *out);
static void *plugin_bind(const struct doc_node *step);
static void plugin_free_config(void *config);
static void plugin_waiting_for(const struct doc_node *step, const struct step_view *view,
                               struct strbuf *out);
static void plugin_work_summary(const json_t *work, bool brief, struct strbuf *out);

/* The step type of pt: its name, summary, fields and the plugin hooks. */
static void set_hooks(struct plugin_type *pt)
{
	pt->type = (struct step_type){
		.name = pt->name,
		.summary = pt->summary,
		.flags = STEP_RETRYABLE | STEP_REATTACH | STEP_OUTPUT_ECHOES,
		.fields = pt->fields,
		.validate = plugin_validate,
		.describe = plugin_describe,
		.bind = plugin_bind,
		.free_config = plugin_free_config,
		.start = plugin_run_start,
		.cancel = plugin_run_cancel,
		.detach = plugin_run_detach,
		.waiting_for = plugin_waiting_for,
		.work_summary = plugin_work_summary,
	};
}

/* describe's "env" (a list, or NULL) into pt->env. */
static int parse_env(struct plugin_type *pt, json_t *env, struct strbuf *err)
{
	for (size_t i = 0; i < json_array_size(env); i++) {
		const char *e = json_string_value(json_array_get(env, i));
		if (!e || !is_name(e, 100, true) || strchr(e, '-') || !strncmp(e, "STEPPY_", 7)) {
			strbuf_addf(
			    err, "env[%zu] must be an environment variable name (not STEPPY_*)", i);
			return SP_EINVAL;
		}
		pt->env[i] = xstrdup(e);
	}
	return 0;
}

int plugin_describe_parse(const char *path, const char *text, size_t len, struct plugin_type **ret,
                          struct strbuf *err)
{
	json_error_t jerr;
	if (len > PLUGIN_DESCRIBE_MAX) {
		strbuf_addf(err, "its describe answer is larger than %d bytes",
		            PLUGIN_DESCRIBE_MAX);
		return SP_EINVAL;
	}
	json_t *d = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!d) {
		strbuf_addf(err, "its describe answer is not JSON (line %d, column %d: %s)",
		            jerr.line, jerr.column, jerr.text);
		return SP_EINVAL;
	}
	int rc = SP_EINVAL;
	struct plugin_type *pt = NULL;
	json_t *proto = json_object_get(d, "protocol");
	if (!json_is_object(d)) {
		strbuf_addstr(err, "its describe answer is not a JSON object");
		goto out;
	}
	if (!json_is_integer(proto) || json_integer_value(proto) != PLUGIN_PROTOCOL) {
		strbuf_addf(err, "it speaks protocol %s; this steppy speaks protocol %d",
		            json_is_integer(proto) ? "another version" : "(none given)",
		            PLUGIN_PROTOCOL);
		if (json_is_integer(proto)) {
			strbuf_reset(err);
			strbuf_addf(err, "it speaks protocol %lld; this steppy speaks protocol %d",
			            (long long)json_integer_value(proto), PLUGIN_PROTOCOL);
		}
		goto out;
	}
	const char *name = json_string_value(json_object_get(d, "type"));
	if (!name || !is_name(name, 64, false)) {
		strbuf_addstr(err, "its \"type\" must be a name of letters and digits, starting "
		                   "with a letter (at most 64)");
		goto out;
	}
	json_t *summary = json_object_get(d, "summary");
	if (summary && (!json_is_string(summary) || json_string_length(summary) > 200)) {
		strbuf_addstr(err, "its \"summary\" must be a string of at most 200 bytes");
		goto out;
	}
	json_t *fields = json_object_get(d, "fields");
	if (fields && !json_is_array(fields)) {
		strbuf_addstr(err, "its \"fields\" must be a list");
		goto out;
	}
	size_t n = json_array_size(fields);
	if (n > PLUGIN_MAX_FIELDS) {
		strbuf_addf(err, "it declares %zu fields; at most %d", n, PLUGIN_MAX_FIELDS);
		goto out;
	}
	json_t *env = json_object_get(d, "env");
	if (env && (!json_is_array(env) || json_array_size(env) > 32)) {
		strbuf_addstr(err, "its \"env\" must be a list of at most 32 names");
		goto out;
	}
	json_t *limit = json_object_get(d, "timeoutSeconds");
	if (limit && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
	              json_integer_value(limit) > PLUGIN_CALL_MAX_S)) {
		strbuf_addf(err, "its \"timeoutSeconds\" must be a whole number from 1 to %d",
		            PLUGIN_CALL_MAX_S);
		goto out;
	}
	json_t *nowait = json_object_get(d, "noWait");
	if (nowait && !json_is_boolean(nowait)) {
		strbuf_addstr(err, "its \"noWait\" must be true or false");
		goto out;
	}
	pt = xcalloc(1, sizeof(*pt));
	pt->no_wait = json_is_true(nowait);
	pt->call_ms = limit ? json_integer_value(limit) * 1000 : PLUGIN_CALL_MS;
	pt->path = xstrdup(path);
	pt->name = xstrdup(name);
	pt->summary = xstrdup(summary ? json_string_value(summary) : "a plugin step type");
	pt->fields = xcalloc(n + 1, sizeof(*pt->fields));
	pt->patterns = xcalloc(n + 1, sizeof(*pt->patterns));
	pt->regex = xcalloc(n + 1, sizeof(*pt->regex));
	pt->choices = xcalloc(n + 1, sizeof(*pt->choices));
	pt->env = xcalloc(json_array_size(env) + 1, sizeof(*pt->env));
	if (parse_env(pt, env, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		pt->nfields = i; /* what plugin_type_free() must free on failure */
		if (parse_field(pt, i, json_array_get(fields, i), err) < 0) {
			pt->nfields = i + (pt->fields[i].name != NULL);
			goto out;
		}
	}
	pt->nfields = n;
	set_hooks(pt);
	*ret = pt;
	pt = NULL;
	rc = 0;
out:
	plugin_type_free(pt);
	json_decref(d);
	return rc;
}

/* ---- the plan-language hooks ---- */

const struct plugin_type *plugin_type_of(const struct doc_node *step)
{
	const char *name = step_string(step, "type");
	const struct step_type *t = name ? step_type_find(name) : NULL;
	if (!t || t->start != plugin_run_start)
		return NULL;
	return (const struct plugin_type *)t; /* type is its first member */
}

/* Patterns: what the field table cannot say. */
static void plugin_validate(struct vctx *v, const struct doc_node *step)
{
	const struct plugin_type *pt = plugin_type_of(step);
	for (size_t i = 0; pt && i < pt->nfields; i++) {
		if (!pt->patterns[i])
			continue;
		const struct doc_node *val = doc_get(step, pt->fields[i].name);
		if (!val || val->kind != DOC_STRING || v_deferred(v, val))
			continue;
		if (regexec(&pt->regex[i], val->u.string.s, 0, NULL, 0) != 0) {
			size_t saved = v_push(v, pt->fields[i].name);
			v_error(v, val->pos, NULL, "\"%.80s\" does not match the pattern %.200s",
			        val->u.string.s, pt->patterns[i]);
			v_pop(v, saved);
		}
	}
}

static void plugin_describe(const struct doc_node *step, struct strbuf *out)
{
	const struct plugin_type *pt = plugin_type_of(step);
	if (!pt)
		return;
	describe_line(out, "plugin", "%s", pt->path);
	for (size_t i = 0; i < pt->nfields; i++) {
		const struct doc_node *val = doc_get(step, pt->fields[i].name);
		if (!val)
			continue;
		json_t *j = doc_to_json(val);
		char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		describe_line(out, pt->fields[i].name, "%s",
		              val->kind == DOC_STRING ? val->u.string.s
		              : text                  ? text
		                                      : "?");
		free(text);
		json_decref(j);
	}
}

static void *plugin_bind(const struct doc_node *step)
{
	const struct plugin_type *pt = plugin_type_of(step);
	struct plugin_config *c = xcalloc(1, sizeof(*c));
	c->pt = pt;
	c->fields = json_object();
	for (size_t i = 0; pt && i < pt->nfields; i++) {
		const struct doc_node *val = doc_get(step, pt->fields[i].name);
		if (val)
			json_object_set_new(c->fields, pt->fields[i].name, doc_to_json(val));
	}
	return c;
}

static void plugin_free_config(void *config)
{
	struct plugin_config *c = config;
	if (!c)
		return;
	json_decref(c->fields);
	free(c);
}

static void plugin_waiting_for(const struct doc_node *step, const struct step_view *view,
                               struct strbuf *out)
{
	const struct plugin_type *pt = plugin_type_of(step);
	if (view->cancelling || !pt)
		return;
	strbuf_addf(out, "its %s plugin's work to end", pt->name);
}

static void plugin_work_summary(const json_t *work, bool brief, struct strbuf *out)
{
	json_t *h = json_object_get(work, "handle");
	if (!h)
		return;
	char *text = json_dumps(h, JSON_COMPACT | JSON_ENCODE_ANY);
	if (brief)
		strbuf_addf(out, "%.80s", text ? text : "?");
	else
		strbuf_addf(out, "plugin work %.200s", text ? text : "?");
	free(text);
}

/* ---- discovery ---- */

int plugin_file_check(const char *path, struct strbuf *err)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		strbuf_addf(err, "cannot read it: %s", strerror(errno));
		return SP_EINVAL;
	}
	if (S_ISLNK(st.st_mode)) {
		strbuf_addstr(err, "it is a symbolic link (plugins are run only from real files)");
		return SP_EINVAL;
	}
	if (!S_ISREG(st.st_mode)) {
		strbuf_addstr(err, "it is not a regular file");
		return SP_EINVAL;
	}
	if (access(path, X_OK) < 0) {
		strbuf_addstr(err, "it is not executable");
		return SP_EINVAL;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		strbuf_addf(err, "it is owned by another user (uid %u)", (unsigned)st.st_uid);
		return SP_EINVAL;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		strbuf_addstr(err, "it is writable by others (chmod go-w)");
		return SP_EINVAL;
	}
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	int rc = 0;
	if (stat(slash ? dir : ".", &st) < 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		strbuf_addf(err, "its directory %s is writable by others", slash ? dir : ".");
		rc = SP_EINVAL;
	}
	free(dir);
	return rc;
}

static void add_list(char ***list, size_t *n, const char *colon_list)
{
	for (const char *p = colon_list; p && *p;) {
		size_t len = strcspn(p, ":");
		if (len && p[0] == '/') { /* relative entries would depend on the cwd */
			*list = xreallocarray(*list, *n + 2, sizeof(**list));
			(*list)[(*n)++] = xstrndup(p, len);
			(*list)[*n] = NULL;
		}
		p += len;
		if (*p)
			p++;
	}
}

char **plugin_path(const char *extra)
{
	char **list = xcalloc(1, sizeof(*list));
	size_t n = 0;
	add_list(&list, &n, getenv("STEPPY_PLUGIN_PATH"));
	add_list(&list, &n, extra);
	const char *data = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char *user = data && data[0] == '/'   ? xstrfmt("%s/steppy/plugins", data)
	             : home && home[0] == '/' ? xstrfmt("%s/.local/share/steppy/plugins", home)
	                                      : NULL;
	if (user)
		add_list(&list, &n, user);
	free(user);
	add_list(&list, &n, "/usr/lib/steppy/plugins");
	return list;
}

/* One plugin being described at start-up. */
struct probe {
	char *path;
	struct strbuf *warnings;
	struct plugin_type *pt; /* the answer, once read */
};

static void describe_done(void *arg, const struct plugin_call_result *res)
{
	struct probe *p = arg;
	struct strbuf why = STRBUF_INIT;
	if (!plugin_call_failed(res, PLUGIN_DESCRIBE_MS, PLUGIN_DESCRIBE_MAX, &why) &&
	    plugin_describe_parse(p->path, res->out, res->out_len, &p->pt, &why) == 0) {
		strbuf_release(&why);
		return;
	}
	strbuf_addf(p->warnings, "plugin %s refused: %s\n", p->path, why.buf);
	strbuf_release(&why);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The no-wait form of a registered type: NAMENoWait, ending once its work
 * has started (STEP_NO_WAIT). A shallow copy: it shares pt's fields,
 * patterns and path, which registered types keep for the process.
 */
static void register_no_wait(const struct plugin_type *pt, struct strbuf *warnings)
{
	struct plugin_type *nw = xmalloc(sizeof(*nw));
	*nw = *pt;
	nw->name = xstrfmt("%sNoWait", pt->name);
	nw->type.name = nw->name;
	nw->type.flags |= STEP_NO_WAIT;
	if (step_type_register(&nw->type) < 0) {
		strbuf_addf(warnings,
		            "plugin %s: type \"%s\" is taken; its no-wait form is not "
		            "registered\n",
		            pt->path, nw->name);
		free(nw->name);
		free(nw);
	}
}

/* Whether dir was scanned already by this process (and notes it if not). */
static bool scanned_before(const char *dir)
{
	static char *scanned[64];
	static size_t nscanned;
	for (size_t i = 0; i < nscanned; i++)
		if (!strcmp(scanned[i], dir))
			return true;
	if (nscanned < sizeof(scanned) / sizeof(scanned[0]))
		scanned[nscanned++] = xstrdup(dir);
	return false;
}

int plugins_load(const char *extra, struct strbuf *warnings)
{
	char **dirs = plugin_path(extra);
	struct probe *probes = NULL;
	size_t nprobes = 0;
	for (size_t d = 0; dirs[d]; d++) {
		if (scanned_before(dirs[d]))
			continue;
		DIR *dir = opendir(dirs[d]);
		if (!dir)
			continue;
		char **names = NULL;
		size_t nnames = 0;
		struct dirent *e;
		while ((e = readdir(dir)) && nnames < 256) {
			if (e->d_name[0] == '.')
				continue;
			names = xreallocarray(names, nnames + 1, sizeof(*names));
			names[nnames++] = xstrdup(e->d_name);
		}
		closedir(dir);
		if (names)
			qsort(names, nnames, sizeof(*names), name_cmp);
		for (size_t i = 0; i < nnames; i++) {
			char *path = xstrfmt("%s/%s", dirs[d], names[i]);
			free(names[i]);
			struct strbuf why = STRBUF_INIT;
			if (plugin_file_check(path, &why) < 0) {
				strbuf_addf(warnings, "plugin %s refused: %s\n", path, why.buf);
				strbuf_release(&why);
				free(path);
				continue;
			}
			strbuf_release(&why);
			probes = xreallocarray(probes, nprobes + 1, sizeof(*probes));
			probes[nprobes++] = (struct probe){ .path = path, .warnings = warnings };
		}
		free(names);
	}
	for (size_t d = 0; dirs[d]; d++)
		free(dirs[d]);
	free(dirs);
	if (!nprobes)
		return 0;

	uv_loop_t loop;
	uv_loop_init(&loop);
	char **env = plugin_env(NULL, true);
	char *request = xstrfmt("{\"protocol\": %d, \"call\": \"describe\"}\n", PLUGIN_PROTOCOL);
	for (size_t i = 0; i < nprobes; i++) {
		struct plugin_call *c;
		struct strbuf why = STRBUF_INIT;
		if (plugin_call_start(&loop, probes[i].path, "describe", request, env,
		                      PLUGIN_DESCRIBE_MS, PLUGIN_DESCRIBE_MAX, describe_done,
		                      &probes[i], &c, &why) < 0)
			strbuf_addf(warnings, "plugin %s refused: %s\n", probes[i].path, why.buf);
		strbuf_release(&why);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(request);
	for (size_t i = 0; env[i]; i++)
		free(env[i]);
	free(env);

	int registered = 0;
	for (size_t i = 0; i < nprobes; i++) {
		struct probe *p = &probes[i];
		if (p->pt) {
			const struct step_type *taken = step_type_find(p->pt->name);
			if (taken) {
				const struct plugin_type *other =
				    taken->start == plugin_run_start
				        ? (const struct plugin_type *)taken
				        : NULL;
				if (other)
					strbuf_addf(warnings,
					            "plugin %s refused: type \"%s\" is already "
					            "given by %s\n",
					            p->path, p->pt->name, other->path);
				else
					strbuf_addf(warnings,
					            "plugin %s refused: type \"%s\" is a built-in "
					            "step type\n",
					            p->path, p->pt->name);
				plugin_type_free(p->pt);
			} else if (step_type_register(&p->pt->type) < 0) {
				strbuf_addf(warnings, "plugin %s refused: too many plugins\n",
				            p->path);
				plugin_type_free(p->pt);
			} else {
				registered++; /* the registry keeps it for the process */
				if (p->pt->no_wait)
					register_no_wait(p->pt, warnings);
			}
		}
		free(p->path);
	}
	free(probes);
	return registered;
}
