/*
 * fuzz-config.c - libFuzzer target: the `steppy serve` configuration reader.
 *
 * Every input is read as a YAML file and as a JSON (with comments) file
 * through serve_config_parse(): both parsers, the field tables, tokens,
 * channels and their notices, the inbox settings and the connection limits;
 * then the diagnostics are printed. Build and run: see tests/fuzz/README.md.
 * The test suite replays tests/fuzz/corpus-config/ through replay.c.
 */
#include "cli/cli.h"
#include "server/config.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull(void)
{
	static FILE *f;
	if (!f)
		f = fopen("/dev/null", "w");
	return f;
}

static void run(const char *name, const uint8_t *data, size_t size)
{
	struct serve_config c;
	struct diag_list dl = DIAG_LIST_INIT;
	serve_config_parse(name, (const char *)data, size, &c, &dl);
	diag_list_sort(&dl);
	diag_print_text(devnull(), &dl, c.doc, false);
	diag_list_release(&dl);
	serve_config_release(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run("fuzz.yaml", data, size);
	run("fuzz.json", data, size);
	return 0;
}
