/*
 * ini.c - the AWS shared configuration file format (see ini.h).
 */
#include "aws/ini.h"

#include "util/alloc.h"
#include "util/fileio.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *trimmed(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

static void add(struct ini *ini, const char *section, char *key, char *value)
{
	ini->items = xreallocarray(ini->items, ini->len + 1, sizeof(*ini->items));
	for (char *p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	ini->items[ini->len++] = (struct ini_entry){ xstrdup(section), key, value };
}

int ini_load(struct ini *ini, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	char *text = NULL;
	size_t len = 0;
	struct strbuf err = STRBUF_INIT;
	int r = read_file_capped(path, 1u << 20, &text, &len, &err);
	strbuf_release(&err);
	if (r < 0)
		return -1;
	char *section = xstrdup("");
	for (char *line = text, *next; line && *line; line = next) {
		char *nl = strchr(line, '\n');
		next = nl ? nl + 1 : NULL;
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		if (n && line[n - 1] == '\r')
			n--;
		bool indented = n && (line[0] == ' ' || line[0] == '\t');
		char *s = trimmed(line, n);
		if (!*s || *s == '#' || *s == ';' || indented) {
			free(s);
			continue;
		}
		if (*s == '[') {
			char *end = strchr(s, ']');
			free(section);
			section = trimmed(s + 1, end ? (size_t)(end - s - 1) : strlen(s + 1));
			free(s);
			continue;
		}
		char *eq = strchr(s, '=');
		if (eq)
			add(ini, section, trimmed(s, (size_t)(eq - s)),
			    trimmed(eq + 1, strlen(eq + 1)));
		free(s);
	}
	free(section);
	free(text);
	return 0;
}

const char *ini_get(const struct ini *ini, const char *section, const char *key)
{
	for (size_t i = ini->len; i-- > 0;)
		if (!strcmp(ini->items[i].section, section) && !strcmp(ini->items[i].key, key))
			return ini->items[i].value;
	return NULL;
}

int ini_has_section(const struct ini *ini, const char *section)
{
	for (size_t i = 0; i < ini->len; i++)
		if (!strcmp(ini->items[i].section, section))
			return 1;
	return 0;
}

void ini_release(struct ini *ini)
{
	for (size_t i = 0; i < ini->len; i++) {
		free(ini->items[i].section);
		free(ini->items[i].key);
		free(ini->items[i].value);
	}
	free(ini->items);
	ini->items = NULL;
	ini->len = 0;
}
