/*
 * template.c - expansion of ${var.NAME} references (see template.h).
 */
#include "plan/template.h"

#include "util/error.h"

#include <string.h>

static int is_name_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

int template_expand(const char *s, struct strbuf *out, template_ref_fn ref, void *arg,
                    const char **ret_reason)
{
	const char *p = s;
	for (;;) {
		const char *dollar = strchr(p, '$');
		if (!dollar) {
			strbuf_addstr(out, p);
			return 0;
		}
		strbuf_add(out, p, (size_t)(dollar - p));
		if (dollar[1] == '$' && dollar[2] == '{') {
			strbuf_addstr(out, "${");
			p = dollar + 3;
			continue;
		}
		if (dollar[1] != '{') {
			strbuf_addch(out, '$');
			p = dollar + 1;
			continue;
		}
		const char *close = strchr(dollar + 2, '}');
		if (!close) {
			*ret_reason = "\"${\" is not closed by \"}\" (write $${ for a literal ${)";
			return SP_EINVAL;
		}
		const char *inner = dollar + 2;
		if (strncmp(inner, "var.", 4) != 0) {
			*ret_reason = "only ${var.NAME} references are supported (write $${ for a "
			              "literal ${)";
			return SP_EINVAL;
		}
		const char *name = inner + 4;
		size_t len = (size_t)(close - name);
		int valid = len > 0;
		for (size_t i = 0; i < len && valid; i++)
			valid = is_name_char(name[i], i == 0);
		if (!valid) {
			*ret_reason =
			    "a variable name has letters, digits and _, and does not start "
			    "with a digit";
			return SP_EINVAL;
		}
		int r = ref(name, len, out, arg);
		if (r < 0)
			return r;
		p = close + 1;
	}
}

void template_scan(const char *s, bool *ret_refs, bool *ret_escapes)
{
	*ret_refs = *ret_escapes = false;
	for (const char *p = strchr(s, '$'); p; p = strchr(p, '$')) {
		if (p[1] == '$' && p[2] == '{') {
			*ret_escapes = true;
			p += 3;
		} else {
			if (p[1] == '{')
				*ret_refs = true;
			p++;
		}
	}
}
