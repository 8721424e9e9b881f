# dsc - one non-recursive GNU Makefile for the whole tree.
#
#   make            build libcommon.a and the programs in cmd/*/
#   make test       install missing packages, build under ASan+UBSan, run every
#                   suite, end with one "N passed, N failed" line (alias: check)
#   make run        show the system working (today: a traced simulator cluster)
#   make sim        simulator soak: SEEDS=N (default 1000) or SEED=S, JOBS=2
#   make sim-mutants  build the Raft mutants and check the simulator kills them
#   make bench      dsc against etcd on this machine (tests/bench/README.md)
#   make bench-sim  Raft core throughput in the simulator
#   make lint       mandoc, shellcheck, check-purity, check-headers
#   make install    PREFIX=/usr/local DESTDIR= BINDIR= MANDIR=; also uninstall
#   make deps       install the Debian packages the build needs
#
# V=1 prints full command lines. SANITIZE=address,undefined builds with
# sanitizers; objects of each flavour live in their own directory so
# sanitized and plain objects never mix, and a change of compiler or flags
# rebuilds (git's GIT-CFLAGS idea).

.SUFFIXES:
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR ?= $(DATADIR)/zsh/site-functions
INSTALL ?= install

PKGS = libcurl jansson libsodium libevent
JOBS ?= 2
RAFT_MUTANTS = 1 2 3 4 5 6 7 8
# SIM_RUNS is the name STYLE.md uses for the soak size.
SEEDS ?= $(or $(SIM_RUNS),1000)

# Tests always run under sanitizers unless SANITIZE is given, even empty.
ifeq ($(origin SANITIZE),undefined)
ifneq ($(filter test check,$(MAKECMDGOALS)),)
SANITIZE = address,undefined
endif
endif

comma := ,
BUILDROOT ?= build
ifneq ($(SANITIZE),)
BUILD ?= $(BUILDROOT)/san-$(subst $(comma),-,$(SANITIZE))
else
BUILD ?= $(BUILDROOT)
endif
# The plain optimized flavour: mutants are always built here, because a
# mutant run is long and finds logic bugs, not memory bugs.
PLAIN = $(if $(SANITIZE),$(BUILDROOT),$(BUILD))

# ---- flags --------------------------------------------------------------

CFLAGS ?= -g -O2
WARNINGS = -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wvla
BASE_CFLAGS = -std=c17 $(WARNINGS) -D_POSIX_C_SOURCE=200809L -Ilibcommon
ifneq ($(SANITIZE),)
SAN_FLAGS = -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
endif

# pkg-config runs at most once, and only when a rule needs it, so `make deps`
# can install pkg-config itself earlier in the same run.
PKG_CFLAGS = $(eval PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS)))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $(shell pkg-config --libs $(PKGS)))$(PKG_LIBS)

# $(1) is the extra flags of a flavour.
cflags_for = $(BASE_CFLAGS) $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(1)
MAIN_CFLAGS = $(call cflags_for,$(SAN_FLAGS))
MAIN_LDFLAGS = $(LDFLAGS) $(SAN_FLAGS)
PLAIN_CFLAGS = $(call cflags_for,)
PLAIN_LDFLAGS = $(LDFLAGS)

# Programs and unit tests get every library --as-needed, so each loads only
# what it calls (dsc-server never maps libcurl's 30-odd libraries: smaller
# RSS, faster start); the simulator and the Raft core get none, so a stray
# libevent call in the pure core fails to link.
PROG_LDLIBS = -Wl,--as-needed $(PKG_LIBS) -lm $(LDLIBS)
SIM_LDLIBS = -lm $(LDLIBS)
UNIT_LDLIBS = -Wl,--as-needed $(PKG_LIBS) -lm $(LDLIBS)

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' '$(1)' '$(2)';
endif

# ---- sources ------------------------------------------------------------

LIB_SRCS = $(sort $(wildcard libcommon/*.c))
PROGS = $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard cmd/*/*.c)))))
SIM_SRCS = $(sort $(wildcard tests/sim/*.c))
UNIT_TEST_SRCS = $(sort $(wildcard tests/unit/test_*.c))
UNIT_HELPER_SRCS = $(sort $(filter-out $(UNIT_TEST_SRCS),$(wildcard tests/unit/*.c)))
# Small programs the bats tests drive (one .c each, not installed).
TOOL_SRCS = $(sort $(wildcard tests/tools/*.c))
MANPAGES = $(sort $(wildcard man/*.[1-8]))
HEADERS = $(sort $(wildcard libcommon/*.h))
SCRIPTS = $(sort $(wildcard tests/run-suites .ci/run tests/sim/*.sh \
	.ci/*.sh tests/bats/*.bash tests/bats/*.bats))
PURE_SRCS = $(sort $(wildcard libcommon/raft*.[ch] libcommon/catalog*.[ch] \
	$(foreach m,err mem prng buf crc32c,libcommon/$(m).[ch])))

objs = $(patsubst %.c,$(1)/%.o,$(2))

UNIT_BINS = $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_TEST_SRCS))
TOOL_BINS = $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRCS))
PROG_BINS = $(PROGS:%=$(BUILD)/%)
SIM_BIN = $(if $(SIM_SRCS),$(BUILD)/dsc-sim)
MUTANT_BINS = $(if $(SIM_SRCS),$(foreach n,$(RAFT_MUTANTS),$(PLAIN)/mutant-$(n)/dsc-sim))

# ---- rules, per flavour -------------------------------------------------

# $(call flavour,DIR,CFLAGS-VAR,LDFLAGS-VAR): objects, libcommon.a, unit
# tests and the simulator of one flavour, all under DIR. The flags are passed
# by name so they expand when a recipe runs (after `make deps`). DIR/.flags
# holds the command line; it is rewritten only when that changes, and every
# object depends on it.
define flavour
$(1)/.flags: FORCE | $(DEPS_FIRST)
	@mkdir -p $$(@D); \
	printf '%s\n' '$$(CC) $$($(2)) $$($(3))' | cmp -s - $$@ || \
	printf '%s\n' '$$(CC) $$($(2)) $$($(3))' >$$@

$(call objs,$(1),$(LIB_SRCS) $(SIM_SRCS) $(UNIT_TEST_SRCS) $(UNIT_HELPER_SRCS) $(TOOL_SRCS) $(wildcard cmd/*/*.c)): $(1)/%.o: %.c $(1)/.flags
	$$(call msg,CC,$$@)mkdir -p $$(@D) && $$(CC) $$($(2)) -MMD -MP -c -o $$@ $$<

$(1)/libcommon.a: $(call objs,$(1),$(LIB_SRCS))
	$$(call msg,AR,$$@)rm -f $$@ && $$(AR) rcs $$@ $$^

$(1)/dsc-sim: $(call objs,$(1),$(SIM_SRCS)) $(1)/libcommon.a
	$$(call msg,LINK,$$@)$$(CC) $$($(3)) -o $$@ $$^ $$(SIM_LDLIBS)

$(patsubst tests/unit/%.c,$(1)/tests/unit/%,$(UNIT_TEST_SRCS)): $(1)/tests/unit/%: $(1)/tests/unit/%.o $(call objs,$(1),$(UNIT_HELPER_SRCS)) $(1)/libcommon.a
	$$(call msg,LINK,$$@)$$(CC) $$($(3)) -o $$@ $$^ $$(UNIT_LDLIBS)

$(patsubst tests/tools/%.c,$(1)/tests/tools/%,$(TOOL_SRCS)): $(1)/tests/tools/%: $(1)/tests/tools/%.o $(1)/libcommon.a
	$$(call msg,LINK,$$@)$$(CC) $$($(3)) -o $$@ $$^ $$(PROG_LDLIBS)
endef

# $(call program,DIR,PROG,LDFLAGS-VAR)
define program
$(1)/$(2): $(call objs,$(1),$(wildcard cmd/$(2)/*.c)) $(1)/libcommon.a
	$$(call msg,LINK,$$@)$$(CC) $$($(3)) -o $$@ $$^ $$(PROG_LDLIBS)
endef

# $(call mutant,N): libcommon built with -DRAFT_MUTANT=N, linked with the
# plain simulator objects.
define mutant
$(PLAIN)/mutant-$(1)/%.o: %.c $(PLAIN)/.flags
	$$(call msg,CC,$$@)mkdir -p $$(@D) && $$(CC) $$(PLAIN_CFLAGS) -DRAFT_MUTANT=$(1) -MMD -MP -c -o $$@ $$<

$(PLAIN)/mutant-$(1)/libcommon.a: $(call objs,$(PLAIN)/mutant-$(1),$(LIB_SRCS))
	$$(call msg,AR,$$@)rm -f $$@ && $$(AR) rcs $$@ $$^

$(PLAIN)/mutant-$(1)/dsc-sim: $(call objs,$(PLAIN),$(SIM_SRCS)) $(PLAIN)/mutant-$(1)/libcommon.a
	$$(call msg,LINK,$$@)$$(CC) $$(PLAIN_LDFLAGS) -o $$@ $$^ $$(SIM_LDLIBS)
endef

# Goals that install packages first make every build wait for them.
DEPS_FIRST = $(if $(filter test check run deps,$(MAKECMDGOALS)),deps)

$(eval $(call flavour,$(BUILD),MAIN_CFLAGS,MAIN_LDFLAGS))
ifneq ($(PLAIN),$(BUILD))
$(eval $(call flavour,$(PLAIN),PLAIN_CFLAGS,PLAIN_LDFLAGS))
endif
$(foreach p,$(PROGS),$(eval $(call program,$(BUILD),$(p),MAIN_LDFLAGS)))
$(foreach n,$(RAFT_MUTANTS),$(eval $(call mutant,$(n))))

-include $(shell find $(sort $(BUILDROOT) $(BUILD)) -name '*.d' 2>/dev/null)

# ---- goals --------------------------------------------------------------

.DEFAULT_GOAL := all
.PHONY: all test check test-build run demo sim sim-mutants bench bench-sim lint check-purity \
	check-headers check-scripts check-man install uninstall clean deps \
	FORCE

all: $(BUILD)/libcommon.a $(PROG_BINS)

deps:
	$(Q).ci/deps.sh

# Build with -k, then run every suite whatever broke: while one engineer's
# simulator does not link, everyone's unit tests still run, and the output
# still ends with the summed "N passed, N failed" line. A failed build is
# one failure of its own (suite "build"). Suite binaries are deleted first
# so that a binary whose rebuild failed is reported as not built instead of
# being run stale; relinking them costs a second or two.
TEST_BINS = $(UNIT_BINS) $(TOOL_BINS) $(SIM_BIN) $(MUTANT_BINS)

test check: deps
	$(Q)rm -f $(TEST_BINS)
	$(Q)built=; $(MAKE) --no-print-directory -k SANITIZE='$(SANITIZE)' \
		test-build || built=-B; \
	tests/run-suites $$built -b '$(BUILD)' -p '$(PLAIN)' -j '$(JOBS)' \
		-m '$(RAFT_MUTANTS)'

test-build: $(BUILD)/libcommon.a $(PROG_BINS) $(TEST_BINS)

no_sim = @echo 'make: no simulator yet: tests/sim/*.c is empty' >&2; exit 1

sim: $(SIM_BIN)
ifeq ($(SIM_SRCS),)
	$(no_sim)
else ifneq ($(SEED),)
	$(SIM_BIN) --seed $(SEED)
else
	$(SIM_BIN) --seeds $(SEEDS) --jobs $(JOBS)
endif

sim-mutants: $(MUTANT_BINS)
ifeq ($(SIM_SRCS),)
	$(no_sim)
else
	tests/sim/mutants.sh $(PLAIN) $(RAFT_MUTANTS)
endif

# dsc against etcd, same work, one run, at most ten minutes, on a plain
# optimized build (tests/bench/README.md); the simulator's core throughput
# is bench-sim.
bench:
	$(Q)tests/bench/run.sh '$(BUILDROOT)' '$(MAKE)'

bench-sim: $(SIM_BIN)
ifeq ($(SIM_SRCS),)
	$(no_sim)
else
	$(SIM_BIN) --bench
endif

# "Running the system" is a local three-server cluster on 127.0.0.2-4 (see
# .ci/local-cluster.sh); `make demo` shows the Raft core in the simulator.
run: deps all $(BUILD)/tests/tools/dsc-rpc
	$(Q).ci/local-cluster.sh '$(BUILD)'

demo: $(SIM_BIN)
ifeq ($(SIM_SRCS),)
	$(no_sim)
else
	$(SIM_BIN) --demo
endif

# ---- lint ---------------------------------------------------------------

lint: check-man check-scripts check-purity check-headers

check-man:
ifneq ($(MANPAGES),)
	$(call msg,MANDOC,$(MANPAGES))mandoc -Tlint -Wwarning $(MANPAGES)
endif

check-scripts:
ifneq ($(SCRIPTS),)
	$(call msg,SHCHECK,$(SCRIPTS))shellcheck $(SCRIPTS)
endif

# The pure modules (STYLE.md 2.1) may not reach for the OS: no event loop,
# no HTTP client, no clock, no sockets, no threads.
PURITY_RE = ^[[:space:]]*\#[[:space:]]*include[[:space:]]*<(event2/|curl/|unistd\.h|time\.h|sys/socket\.h|pthread\.h)
check-purity:
	$(call msg,PURITY,libcommon)if grep -nE '$(PURITY_RE)' $(PURE_SRCS); then \
		echo 'check-purity: pure modules must not include the above' >&2; \
		exit 1; \
	fi

check-headers: | $(DEPS_FIRST)
	$(call msg,HEADERS,libcommon)for h in $(HEADERS); do \
		printf '#include "%s"\n#include "%s"\n' "$$h" "$$h" | \
		$(CC) $(PLAIN_CFLAGS) -I. -fsyntax-only -x c - || \
		{ echo "check-headers: $$h does not compile on its own" >&2; \
		exit 1; }; \
	done

# ---- install ------------------------------------------------------------

INSTALLED = $(PROGS:%=$(BINDIR)/%) \
	$(foreach m,$(MANPAGES),$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m))) \
	$(if $(wildcard completions/dsc.bash),$(BASHCOMPDIR)/dsc $(PROGS:%=$(BASHCOMPDIR)/%)) \
	$(if $(wildcard completions/_dsc),$(ZSHCOMPDIR)/_dsc)

# bash-completion loads a completion by the command's name, so the one
# dsc.bash is installed as "dsc" with a link per program.
install: $(PROG_BINS)
ifneq ($(PROGS),)
	$(INSTALL) -d '$(DESTDIR)$(BINDIR)'
	$(INSTALL) -m 0755 $(PROG_BINS) '$(DESTDIR)$(BINDIR)'
endif
	$(foreach m,$(MANPAGES),$(INSTALL) -d '$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))' && \
		$(INSTALL) -m 0644 $(m) '$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/' &&) true
ifneq ($(wildcard completions/dsc.bash),)
	$(INSTALL) -d '$(DESTDIR)$(BASHCOMPDIR)'
	$(INSTALL) -m 0644 completions/dsc.bash '$(DESTDIR)$(BASHCOMPDIR)/dsc'
	$(foreach p,$(PROGS),ln -sf dsc '$(DESTDIR)$(BASHCOMPDIR)/$(p)' &&) true
endif
ifneq ($(wildcard completions/_dsc),)
	$(INSTALL) -d '$(DESTDIR)$(ZSHCOMPDIR)'
	$(INSTALL) -m 0644 completions/_dsc '$(DESTDIR)$(ZSHCOMPDIR)/_dsc'
endif

# Removes exactly the files install put. Under a DESTDIR (a staging tree),
# directories left empty are removed too, up to and including DESTDIR;
# system directories such as /usr/local/bin are never removed.
uninstall:
	rm -f $(foreach f,$(INSTALLED),'$(DESTDIR)$(f)')
ifneq ($(DESTDIR),)
	@top='$(DESTDIR)'; while [ "$${top%/}" != "$$top" ]; do top=$${top%/}; done; \
	for d in $(sort $(patsubst %/,%,$(dir $(INSTALLED)))); do \
		d="$$top$$d"; \
		while [ "$${#d}" -ge "$${#top}" ] && [ -n "$$d" ] && \
		    rmdir "$$d" 2>/dev/null; do \
			d=$${d%/*}; \
		done; \
	done
endif

clean:
	rm -rf $(sort $(BUILDROOT) $(BUILD))

FORCE:
