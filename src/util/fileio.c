/*
 * fileio.c - capped whole-file reading (see fileio.h).
 */
#include "util/fileio.h"

#include "util/alloc.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void format_bytes(struct strbuf *out, size_t n)
{
	if (n < 1024)
		strbuf_addf(out, "%zu bytes", n);
	else if (n < (size_t)1024 * 1024)
		strbuf_addf(out, "%.1f KiB", (double)n / 1024.0);
	else
		strbuf_addf(out, "%.1f MiB", (double)n / (1024.0 * 1024.0));
}

static int too_big(struct strbuf *err, size_t size, size_t max, int exact)
{
	if (exact) {
		strbuf_addstr(err, "file is ");
		format_bytes(err, size);
		strbuf_addstr(err, ", over the ");
	} else {
		strbuf_addstr(err, "input is over the ");
	}
	format_bytes(err, max);
	strbuf_addstr(err, " limit");
	return SP_ETOOBIG;
}

int read_file_capped(const char *path, size_t max, char **ret_data, size_t *ret_len,
                     struct strbuf *err)
{
	int is_stdin = strcmp(path, "-") == 0;
	int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		strbuf_addstr(err, strerror(errno));
		return SP_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		strbuf_addstr(err, strerror(errno));
		goto fail_close;
	}
	if (S_ISDIR(st.st_mode)) {
		strbuf_addstr(err, "is a directory, not a file");
		goto fail_close;
	}
	if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max) {
		too_big(err, (size_t)st.st_size, max, 1);
		if (!is_stdin)
			close(fd);
		return SP_ETOOBIG;
	}

	size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
	size_t len = 0;
	char *data = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				free(data);
				if (!is_stdin)
					close(fd);
				return too_big(err, max, max, 0);
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			data = xrealloc(data, cap + 1);
		}
		ssize_t n = read(fd, data + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			strbuf_addstr(err, strerror(errno));
			free(data);
			goto fail_close;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(data);
		if (!is_stdin)
			close(fd);
		return too_big(err, max, max, 0);
	}
	if (!is_stdin)
		close(fd);
	data[len] = '\0';
	*ret_data = data;
	*ret_len = len;
	return 0;

fail_close:
	if (!is_stdin)
		close(fd);
	return SP_EIO;
}
