/*
 * replay.c - runs the fuzz target over files and directories of inputs, so
 * the test suite exercises the corpus without libFuzzer.
 */
#include "util/alloc.h"
#include "util/fileio.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t replay(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: cannot stat %s\n", path);
		exit(2);
	}
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		size_t n = 0;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char *child = xstrfmt("%s/%s", path, e->d_name);
			n += replay(child);
			free(child);
		}
		if (d)
			closedir(d);
		return n;
	}
	struct strbuf err = STRBUF_INIT;
	char *data;
	size_t len;
	if (read_file_capped(path, (size_t)64 << 20, &data, &len, &err) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, err.buf);
		exit(2);
	}
	LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	free(data);
	return 1;
}

int main(int argc, char **argv)
{
	size_t n = 0;
	for (int i = 1; i < argc; i++)
		n += replay(argv[i]);
	printf("replayed %zu inputs\n", n);
	return 0;
}
