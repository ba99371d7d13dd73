# Steppy build. GNU make, pkg-config, a C17 compiler (gcc or clang).
#
#   make                 build/steppy
#   make check           the whole test suite (what README and .ci/run call)
#   make unit            unit tests only, in this build
#   make CC=clang        any target with clang
#   make BUILD=build/asan SAN=1 unit   unit tests under AddressSanitizer + UBSan
#   make fuzz            the libFuzzer targets (clang), see tests/fuzz/README.md
#   make format          clang-format every source file
#   make man             the man pages, from docs/ (pandoc)
#   make install         PREFIX (/usr/local), DESTDIR; make uninstall

BUILD  ?= build
CC     ?= cc
PKGS   := jansson yaml-0.1 sqlite3 libpq libuv libcurl libcrypto libxml-2.0 libmicrohttpd cjose \
          libsystemd
WARN   := -Wall -Wextra -Werror -Wshadow -Wconversion -Wstrict-prototypes \
          -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c17 -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) -Isrc \
              $(shell pkg-config --cflags $(PKGS))
LIBS   := $(shell pkg-config --libs $(PKGS)) -lm
LDFLAGS ?=

ifeq ($(SAN),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS    += -fsanitize=address,undefined
endif

# The library: every layer but the command line (docs/ARCHITECTURE.md).
# The commands (src/cli/) are an archive of their own that the binary, and
# the tests of the commands' helpers, link before it.
LAYERS   := util sheet plan core store http aws notify steps runtime server
LIB_SRC  := $(sort $(foreach d,$(LAYERS),$(wildcard src/$(d)/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/web-assets.o
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
LINK_LIBS := $(BUILD)/libsteppy-cli.a $(BUILD)/libsteppy.a
UNIT_SRC := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all unit check clean format fuzz demo print-pkgs man install uninstall
all: $(BUILD)/steppy

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# The dashboard's files (web/) are compiled in: tools/embed writes their
# bytes into a generated C file (src/server/web-assets.h, docs/dashboard.md);
# the directory is a prerequisite so that removing a file regenerates it too.
WEB_FILES := $(sort $(wildcard web/*.html web/*.js web/*.css web/*.svg))

$(BUILD)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 $(WARN) -O2 -o $@ $<

$(BUILD)/gen/web-assets.c: $(BUILD)/tools/embed $(WEB_FILES) web
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed $(WEB_FILES) >$@.tmp && mv $@.tmp $@

$(BUILD)/gen/web-assets.o: $(BUILD)/gen/web-assets.c
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libsteppy.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libsteppy-cli.a: $(CLI_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/steppy: $(BUILD)/src/main.o $(LINK_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(LINK_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags cmocka) -Itests/unit $(LDFLAGS) -o $@ \
		$< $(LINK_LIBS) $(LIBS) $(shell pkg-config --libs cmocka)

# The fuzz targets (the plan reader, the API's request handling, the server
# configuration reader) replay their corpora in the test suite
# (tests/fuzz/replay.c); the real fuzzers need clang's libFuzzer.
FUZZ_TARGETS := plan api config
FUZZ_REPLAY  := $(FUZZ_TARGETS:%=$(BUILD)/fuzz-%-replay)

$(BUILD)/fuzz-%-replay: tests/fuzz/fuzz-%.c tests/fuzz/replay.c $(LINK_LIBS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

fuzz:
	$(MAKE) BUILD=build/fuzz CC=clang SAN=1 CFLAGS="-O1 -g -fsanitize=fuzzer-no-link" \
		build/fuzz/libsteppy.a build/fuzz/libsteppy-cli.a
	for t in $(FUZZ_TARGETS); do \
		clang -std=c17 -D_GNU_SOURCE -Isrc $(shell pkg-config --cflags $(PKGS)) -O1 -g \
			-fsanitize=fuzzer,address,undefined -o build/fuzz/fuzz-$$t \
			tests/fuzz/fuzz-$$t.c build/fuzz/libsteppy-cli.a build/fuzz/libsteppy.a $(LIBS) || exit 1; \
	done

unit: $(UNIT_BIN) $(BUILD)/steppy $(FUZZ_REPLAY)

check:
	tests/run.sh

demo: $(BUILD)/steppy
	$(BUILD)/steppy validate examples/demo.yaml examples/original.jsonc
	$(BUILD)/steppy plan examples/demo.yaml

# The Debian libraries the build links (tests/extend/ builds with them too).
print-pkgs:
	@echo $(PKGS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# ---- installing (docs/operations.md) -----------------------------------------
# The man pages are made from docs/*.md by tools/man.sh (pandoc).
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
LIBDIR      ?= $(PREFIX)/lib
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/steppy
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/vendor-completions
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR  ?= /etc
PLUGINDIR   ?= $(LIBDIR)/steppy/plugins
VERSION     := $(shell sed -n 's/.*STEPPY_VERSION "\(.*\)"/\1/p' src/util/version.h)
MAN_STAMP   := $(BUILD)/man/.stamp

$(MAN_STAMP): tools/man.sh docs/cli.md docs/plan-format.md docs/configuration.md $(BUILD)/steppy
	rm -rf $(BUILD)/man
	sh tools/man.sh $(BUILD)/man $(VERSION) $(BUILD)/steppy
	touch $@

man: $(MAN_STAMP)

# What install puts in place, named once so uninstall removes exactly these:
# a man page per command section of docs/cli.md (as tools/man.sh makes them)
# and the examples.
MAN1_PAGES := steppy $(addprefix steppy-,$(shell sed -n 's/^\#\# steppy \(.*\)/\1/p' docs/cli.md | tr ',' '\n' | sed 's/^ *steppy //; s/^ *//'))
MAN5_PAGES := steppy-plan steppy-serve.conf
EXAMPLES   := $(wildcard examples/*.yaml examples/*.jsonc)

# Every path is quoted: DESTDIR and the directories may hold spaces.
install: $(BUILD)/steppy $(MAN_STAMP)
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(PLUGINDIR)" "$(DESTDIR)$(MANDIR)/man1" \
		"$(DESTDIR)$(MANDIR)/man5" "$(DESTDIR)$(BASHCOMPDIR)" "$(DESTDIR)$(ZSHCOMPDIR)" \
		"$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(DOCDIR)/examples"
	install -m 0755 "$(BUILD)/steppy" "$(DESTDIR)$(BINDIR)/steppy"
	for p in $(MAN1_PAGES); do \
		install -m 0644 "$(BUILD)/man/$$p.1" "$(DESTDIR)$(MANDIR)/man1/$$p.1" || exit 1; \
	done
	for p in $(MAN5_PAGES); do \
		install -m 0644 "$(BUILD)/man/$$p.5" "$(DESTDIR)$(MANDIR)/man5/$$p.5" || exit 1; \
	done
	install -m 0644 dist/completion/steppy.bash "$(DESTDIR)$(BASHCOMPDIR)/steppy"
	install -m 0644 dist/completion/_steppy "$(DESTDIR)$(ZSHCOMPDIR)/_steppy"
	sed 's|/usr/bin/steppy|$(BINDIR)/steppy|; s|/etc/steppy/|$(SYSCONFDIR)/steppy/|' \
		dist/steppy.service >"$(DESTDIR)$(UNITDIR)/steppy.service"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/steppy.service"
	install -m 0644 dist/serve.yaml "$(DESTDIR)$(DOCDIR)/examples/serve.yaml"
	install -m 0644 $(EXAMPLES) "$(DESTDIR)$(DOCDIR)/examples/"
	@# The example configuration, unless one is there (never overwritten).
	install -d "$(DESTDIR)$(SYSCONFDIR)/steppy"
	test -e "$(DESTDIR)$(SYSCONFDIR)/steppy/serve.yaml" || \
		install -m 0644 dist/serve.yaml "$(DESTDIR)$(SYSCONFDIR)/steppy/serve.yaml"

# Removes what install put there, file by file, except the configuration
# (yours now) and the store (/var/lib/steppy); a directory goes only if
# that left it empty (never rm -r: you may keep files there).
uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/steppy" "$(DESTDIR)$(UNITDIR)/steppy.service" \
		"$(DESTDIR)$(BASHCOMPDIR)/steppy" "$(DESTDIR)$(ZSHCOMPDIR)/_steppy" \
		"$(DESTDIR)$(DOCDIR)/examples/serve.yaml"
	for p in $(MAN1_PAGES); do rm -f "$(DESTDIR)$(MANDIR)/man1/$$p.1"; done
	for p in $(MAN5_PAGES); do rm -f "$(DESTDIR)$(MANDIR)/man5/$$p.5"; done
	for f in $(notdir $(EXAMPLES)); do rm -f "$(DESTDIR)$(DOCDIR)/examples/$$f"; done
	-rmdir "$(DESTDIR)$(DOCDIR)/examples" "$(DESTDIR)$(DOCDIR)" \
		"$(DESTDIR)$(PLUGINDIR)" "$(DESTDIR)$(LIBDIR)/steppy" 2>/dev/null

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(BUILD)/src/main.d
