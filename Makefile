# apiary — GNU Makefile.
#
#   make            build/apiary (release, -O2)
#   make test       setup, release build, sanitized (ASan+UBSan) build, every suite; ends
#                   with one line "N passed, N failed"
#   make demo       setup, build, run the end-to-end demo (scripts/demo)
#   make bench      release benchmarks (bench/run)
#   make fuzz       libFuzzer harnesses (clang), each run briefly
#   make install    PREFIX=/usr/local DESTDIR=
#
# Every library comes through pkg-config. Headers are tracked with -MMD -MP. Sources are
# found by wildcard: a new src/<layer>/x.c joins libapiary, a new tests/unit/test_x.c
# becomes a test binary. Files named *_avx2.c / *_avx512.c / *_neon.c get their ISA flags
# only for themselves; the engine picks kernels at run time from CPUID.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
V       ?= 0

PKGS    := libsodium libuv sqlite3 jansson libmicrohttpd libcurl libsecp256k1 libpcre2-8 miniupnpc
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter -Wvla
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Isrc $(PKG_CFLAGS) -MMD -MP
REL_CFLAGS  := $(BASE_CFLAGS) -O2 -g -fno-strict-aliasing
SAN_CFLAGS  := $(BASE_CFLAGS) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined
LDLIBS  := $(PKG_LIBS) -lnatpmp -lm -pthread

ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
ISA_avx2   := -mavx2 -mfma -mf16c
ISA_avx512 := -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx512vnni -mfma -mf16c
else
ISA_avx2   :=
ISA_avx512 :=
endif

# Sources. Kernels for other ISAs are left out on machines that cannot compile them.
LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*/*.c))
ifneq ($(ARCH),x86_64)
LIB_SRC := $(filter-out %_avx2.c %_avx512.c,$(LIB_SRC))
endif
ifneq ($(ARCH),aarch64)
LIB_SRC := $(filter-out %_neon.c,$(LIB_SRC))
endif
# Contracts: scripts/build-contracts compiles contracts/*.sol (pinned solc in tools/) into
# build/contracts/ and generates CONTRACTS_GEN, which joins libapiary like any source.
SOL_SRC := $(wildcard contracts/*.sol)
CONTRACTS_GEN := build/gen/contracts_gen.c
LIB_SRC += $(CONTRACTS_GEN)
CLI_SRC := $(wildcard src/cli/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
CLI_TEST_SRC := $(wildcard tests/cli/test_*.c)
NET_TEST_SRC := $(wildcard tests/net/test_*.c)
TEST_SUPPORT := tests/support/testutil.c
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC := $(wildcard bench/bench_*.c)

REL := build/rel
SAN := build/san

REL_LIB_OBJ := $(LIB_SRC:%.c=$(REL)/%.o)
SAN_LIB_OBJ := $(LIB_SRC:%.c=$(SAN)/%.o)
REL_CLI_OBJ := $(CLI_SRC:%.c=$(REL)/%.o)
SAN_CLI_OBJ := $(CLI_SRC:%.c=$(SAN)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(SAN)/tests/%)
CLI_TEST_BIN := $(CLI_TEST_SRC:tests/cli/%.c=$(SAN)/tests/%)
NET_TEST_BIN := $(NET_TEST_SRC:tests/net/%.c=$(SAN)/tests/%)
SAN_TEST_BIN := $(UNIT_BIN) $(CLI_TEST_BIN) $(NET_TEST_BIN)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(REL)/bench/%)

ifeq ($(V),0)
Q := @
else
Q :=
endif

.PHONY: all test test-build demo bench fuzz install clean setup check-deps contracts
all: build/apiary

contracts: $(CONTRACTS_GEN)

$(CONTRACTS_GEN): $(SOL_SRC) scripts/build-contracts scripts/solc-compile.js
	@echo "  SOLC    contracts/*.sol"
	$(Q)scripts/build-contracts build/contracts $@ >/dev/null

setup:
	@scripts/setup --quiet

check-deps:
	@pkg-config --exists $(PKGS) || { echo "make: missing libraries; run scripts/setup (or make test / make demo, which call it)"; exit 1; }

build/apiary: $(REL)/apiary
	@mkdir -p build
	$(Q)cp $< $@.tmp && mv -f $@.tmp $@

$(REL)/apiary: $(REL_CLI_OBJ) $(REL)/libapiary.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $(REL_CLI_OBJ) $(REL)/libapiary.a $(LDLIBS)

$(SAN)/apiary: $(SAN_CLI_OBJ) $(SAN)/libapiary.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $(SAN_CLI_OBJ) $(SAN)/libapiary.a $(LDLIBS)

$(REL)/libapiary.a: $(REL_LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(SAN)/libapiary.a: $(SAN_LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

# ISA flags by file name suffix.
isa = $(if $(findstring _avx512.c,$1),$(ISA_avx512),$(if $(findstring _avx2.c,$1),$(ISA_avx2)))

$(REL)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(REL_CFLAGS) $(call isa,$<) -c $< -o $@

$(SAN)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC/san  $<"
	$(Q)$(CC) $(SAN_CFLAGS) $(call isa,$<) -c $< -o $@

$(UNIT_BIN): $(SAN)/tests/%: $(SAN)/tests/unit/%.o $(SAN)/tests/support/testutil.o $(SAN)/libapiary.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

$(NET_TEST_BIN): $(SAN)/tests/%: $(SAN)/tests/net/%.o $(SAN)/tests/support/testutil.o $(SAN)/tests/support/anvil.o $(SAN)/tests/support/cluster.o $(SAN)/libapiary.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

$(CLI_TEST_BIN): $(SAN)/tests/%: $(SAN)/tests/cli/%.o $(SAN)/tests/support/testutil.o $(SAN)/libapiary.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(SAN_CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

test-build: check-deps build/apiary $(SAN)/apiary $(SAN_TEST_BIN)

# The suite: unit and CLI tests, sanitized. tests/run sums every binary's cmocka counts.
test: setup
	@$(MAKE) --no-print-directory test-build
	@tests/run $(SAN)

demo:
	@scripts/setup --quiet
	@$(MAKE) --no-print-directory check-deps build/apiary
	@scripts/demo

$(REL)/bench/%: $(REL)/bench/%.o $(REL)/libapiary.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(LDLIBS)

bench: check-deps build/apiary $(BENCH_BIN)
	@bench/run $(REL)

# libFuzzer: each harness links a fuzz-instrumented copy of the library.
FUZZ := build/fuzz
FUZZ_CFLAGS := $(BASE_CFLAGS) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ)/%.o)
$(FUZZ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)clang $(FUZZ_CFLAGS) $(call isa,$<) -c $< -o $@
$(FUZZ)/libapiary.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^
$(FUZZ)/bin/%: tests/fuzz/%.c $(FUZZ)/libapiary.a
	@mkdir -p $(dir $@)
	$(Q)clang $(BASE_CFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o $@ $< $(FUZZ)/libapiary.a $(LDLIBS)
FUZZ_SECONDS ?= 20
fuzz: check-deps $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ)/bin/%)
	@tests/fuzz/run $(FUZZ)/bin $(FUZZ_SECONDS)

# AArch64: the NEON kernels and everything above them in src/llm, cross-compiled with
# Debian's aarch64 gcc and run under qemu-user by tests/cross/run (part of `make test`).
# The suites chosen need only libc, cmocka, jansson, PCRE2 and libsodium on arm64.
ARM := build/arm64
ARM_CC := aarch64-linux-gnu-gcc
ARM_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Isrc -O2 -g -fno-strict-aliasing -MMD -MP
# gcc 12's vectorizer crashes on test_engine.c for aarch64 (an internal compiler error), so
# test files are built without it; the library is built as shipped.
ARM_TEST_CFLAGS := $(ARM_CFLAGS) -fno-tree-vectorize
ARM_LIB_SRC := $(filter-out %_avx2.c %_avx512.c src/llm/mstore.c,$(wildcard src/llm/*.c)) \
               src/core/err.c src/core/fs.c src/core/hex.c src/core/buf.c
ARM_TESTS := quant engine quantize gguf tok tok_bpe_ref sample chat
ARM_TEST_BIN := $(ARM_TESTS:%=$(ARM)/tests/test_%)
$(ARM)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "  CC/a64  $<"
	$(Q)$(ARM_CC) $(ARM_CFLAGS) -c $< -o $@
$(ARM)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	@echo "  CC/a64  $<"
	$(Q)$(ARM_CC) $(ARM_TEST_CFLAGS) -c $< -o $@
$(ARM)/libapiary-llm.a: $(ARM_LIB_SRC:%.c=$(ARM)/%.o)
	@rm -f $@
	$(Q)aarch64-linux-gnu-ar rcs $@ $^
$(ARM)/tests/test_%: $(ARM)/tests/unit/test_%.o $(ARM)/tests/support/testutil.o $(ARM)/libapiary-llm.a
	$(Q)$(ARM_CC) $(ARM_CFLAGS) -o $@ $^ -lcmocka -ljansson -lpcre2-8 -lsodium -lm
test-arm64-build: $(ARM_TEST_BIN)
.PHONY: test-arm64-build

install: build/apiary
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 build/apiary $(DESTDIR)$(PREFIX)/bin/apiary

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
