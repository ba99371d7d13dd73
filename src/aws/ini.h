/*
 * ini.h - the AWS shared configuration files (~/.aws/config and
 * ~/.aws/credentials): sections of "key = value" lines.
 */
#ifndef STEPPY_AWS_INI_H
#define STEPPY_AWS_INI_H

#include <stddef.h>

struct ini_entry {
	char *section, *key, *value;
};

struct ini {
	struct ini_entry *items;
	size_t len;
};

/*
 * Reads path, adding its entries to ini. A missing file adds nothing and is
 * not an error. Indented lines under a key with an empty value (nested
 * service settings) are skipped; comments start with # or ;. Keys are
 * lower-cased, as the AWS tools read them. Returns 0, or -1 if the file
 * exists but cannot be read.
 */
int ini_load(struct ini *ini, const char *path);

/* The value of key in section (the last one given wins), or NULL. */
const char *ini_get(const struct ini *ini, const char *section, const char *key);

/* True if the section exists. */
int ini_has_section(const struct ini *ini, const char *section);

void ini_release(struct ini *ini);

#endif
