# ecs-metadata: builds the C core ecs_metadata.core for one Lua at a time.
#
#   make                  build for Lua 5.4 (build/5.4/ecs_metadata/core.so)
#   make LUA=luajit       ... or LuaJIT 2.1; LUA=5.1, LUA=5.3 likewise
#   make test             run the specs against the bundled endpoint
#   make test-nginx       only the specs that run the module inside nginx
#   make check            luacheck
#   make install          install the C core, the Lua layer and ecs-metadata under PREFIX
#   make valgrind         the specs' C paths under valgrind, leaks are errors
#   make SANITIZE=1 test  the specs with AddressSanitizer and UBSan
#   make SIMD=0 test      ... with the decoder's portable scan (no SSE2/NEON)
#   make test-gc          the specs under an aggressive garbage collector
#   make fuzz             run the decoder's libFuzzer harness for FUZZ_SECONDS
#   make bench            the benchmarks
#   make bench-decode     the decoder's: cjson, SSE2/NEON and SIMD=0 builds
#   make cross            the decoder on arm64 and big-endian, under qemu-user

LUA        ?= 5.4
PREFIX     ?= /usr/local
DESTDIR    ?=
CC         ?= cc
CFLAGS     ?= -O2 -g
PKG_CONFIG ?= pkg-config

ifeq ($(LUA),luajit)
LUA_INCDIR ?= /usr/include/luajit-2.1
LUA_BIN    ?= luajit
LUA_ABI    := 5.1
else
LUA_INCDIR ?= /usr/include/lua$(LUA)
LUA_BIN    ?= lua$(LUA)
LUA_ABI    := $(LUA)
endif
# What the installed ecs-metadata's first line names.
LUA_INTERPRETER ?= $(shell command -v $(LUA_BIN) 2>/dev/null || echo /usr/bin/$(LUA_BIN))

# A missing libcurl is said in words, not as a compiler error.
ifeq (,$(CURL_LIBS)$(filter clean check uninstall,$(MAKECMDGOALS)))
ifneq (0,$(shell $(PKG_CONFIG) --exists libcurl >/dev/null 2>&1; echo $$?))
$(error libcurl's development files were not found by $(PKG_CONFIG): install libcurl4-openssl-dev (Debian, Ubuntu) or libcurl-devel, or set CURL_CFLAGS and CURL_LIBS)
endif
endif
CURL_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcurl)
CURL_LIBS   ?= $(shell $(PKG_CONFIG) --libs libcurl)

WARNINGS = -Wall -Wextra -Werror -pedantic -Wshadow -Wcast-qual \
           -Wmissing-prototypes -Wstrict-prototypes -Wpointer-arith \
           -Wundef -Wwrite-strings
ALL_CFLAGS = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden \
             $(WARNINGS) -I$(LUA_INCDIR) $(CURL_CFLAGS) $(CFLAGS)
# No -llua: the interpreter that loads the module provides the Lua API.
ALL_LDFLAGS = -shared $(LDFLAGS)
LIBS = $(CURL_LIBS) -pthread

# SIMD=0: the decoder's portable (SWAR) scan even where SSE2 or NEON is
# there, as on a CPU without them; built in a directory of its own.
ifeq ($(SIMD),0)
ALL_CFLAGS += -DECSM_NO_SIMD
BUILD ?= build/$(LUA)-nosimd$(if $(filter 1,$(SANITIZE)),-sanitize)
endif

ifeq ($(SANITIZE),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer
ALL_LDFLAGS += -fsanitize=address,undefined
BUILD ?= build/$(LUA)-sanitize
# The interpreter is not built with ASan, so its runtime comes first.
ifneq (,$(findstring clang,$(CC)))
SANITIZE_PRELOAD := $(shell $(CC) -print-file-name=libclang_rt.asan-x86_64.so)
else
SANITIZE_PRELOAD := $(shell $(CC) -print-file-name=libasan.so)
endif
SANITIZE_ENV = LD_PRELOAD=$(SANITIZE_PRELOAD) \
               ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
               UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
endif
BUILD ?= build/$(LUA)

SOURCES = $(wildcard src/*.c)
OBJECTS = $(SOURCES:src/%.c=$(BUILD)/obj/%.o)
MODULE  = $(BUILD)/ecs_metadata/core.so
# Lua modules for specs only, never installed: fork, wait and _exit; the
# decoder on a document of billions of bytes.
SPEC_HELPERS = $(BUILD)/fork_helper.so $(BUILD)/long_input_helper.so

# Where specs, demos and benchmarks find this checkout's modules.
LUA_PATH_HERE  = lua/?.lua;lua/?/init.lua;;
LUA_CPATH_HERE = $(BUILD)/?.so;;
# The endpoint runs outside this environment: only Lua sees the sanitizers.
RUN = env $(SANITIZE_ENV) LUA_PATH='$(LUA_PATH_HERE)' LUA_CPATH='$(LUA_CPATH_HERE)'
SERVE = endpoint/serve exec

BUSTED ?= busted
BUSTED_FLAGS ?=

.PHONY: all test test-all test-nginx check install uninstall clean test-gc valgrind fuzz bench \
        bench-decode bench-resty cross demo

all: $(MODULE)

$(MODULE): $(OBJECTS)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $(OBJECTS) $(LIBS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(OBJECTS:.o=.d)

$(BUILD)/%_helper.so: spec/%_helper.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< -pthread

# With the module's objects but a decoder of its own, in which a signed
# overflow traps in every build, not only under SANITIZE=1.
TRAPPING_DECODER = $(BUILD)/obj/decode-trapping.o
$(TRAPPING_DECODER): src/decode.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fsanitize=signed-integer-overflow \
	    -fsanitize-undefined-trap-on-error -MMD -MP -c -o $@ $<
-include $(TRAPPING_DECODER:.o=.d)

$(BUILD)/long_input_helper.so: spec/long_input_helper.c $(TRAPPING_DECODER) \
                               $(filter-out $(BUILD)/obj/decode.o,$(OBJECTS))
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Isrc $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# The nginx specs (spec/7x, tagged #nginx) run the module inside nginx,
# whose Lua is LuaJIT, and the threads spec (spec/06) runs it under
# helgrind, which cannot run sanitized code: both load the C core built for
# LuaJIT without sanitizers, whatever LUA runs busted.
PLAIN_LUAJIT   = build/luajit
NGINX_MODULE   = $(PLAIN_LUAJIT)/ecs_metadata/core.so
THREADS_HELPER = $(PLAIN_LUAJIT)/threads_helper.so
PLAIN_LUAJIT_MAKE = $(MAKE) LUA=luajit SANITIZE= SIMD= BUILD=$(PLAIN_LUAJIT)
ifneq ($(BUILD),$(PLAIN_LUAJIT))
$(NGINX_MODULE): $(SOURCES) $(wildcard src/*.h)
	$(PLAIN_LUAJIT_MAKE) $(NGINX_MODULE)
$(THREADS_HELPER): spec/threads_helper.c
	$(PLAIN_LUAJIT_MAKE) $(THREADS_HELPER)
endif
SPEC_NEEDS = $(MODULE) $(SPEC_HELPERS) $(NGINX_MODULE) $(THREADS_HELPER)

test: $(SPEC_NEEDS)
	$(SERVE) $(RUN) $(BUSTED) --lua=$(LUA_BIN) --cpath=$(BUILD)/?.so $(BUSTED_FLAGS)

# The specs with a collector that runs all the time (spec/gc_stress.lua), so
# finalizers run inside the module's calls, as luv's CI does.
test-gc: $(SPEC_NEEDS)
	$(SERVE) $(RUN) $(BUSTED) --lua=$(LUA_BIN) --cpath=$(BUILD)/?.so \
	    --helper=spec/gc_stress.lua $(BUSTED_FLAGS)

# Only the nginx specs (4 workers, wrk runs included: about a minute).
test-nginx:
	$(MAKE) test LUA=luajit BUSTED_FLAGS='--tags=nginx $(BUSTED_FLAGS)'

test-all:
	$(MAKE) test LUA=5.4
	$(MAKE) test LUA=luajit

# Every C path the specs reach, under valgrind. Lua allocates through
# realloc, so only libcurl's and our own leaks can show up here.
VALGRIND = valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite \
           --show-leak-kinds=definite \
           --error-exitcode=1 --suppressions=.ci/valgrind.supp
valgrind: $(SPEC_NEEDS)
	$(SERVE) $(RUN) ECSM_UNDER_VALGRIND=1 \
	    $(VALGRIND) $(LUA_BIN) $$(command -v $(BUSTED)) --cpath=$(BUILD)/?.so $(BUSTED_FLAGS)

check:
	luacheck .

demo: $(MODULE)
	endpoint/serve exec --profile v4 $(RUN) $(LUA_BIN) examples/demo.lua

BARE_GET = build/bench/bare_get
$(BARE_GET): bench/bare_get.c
	@mkdir -p $(@D)
	$(CC) -O2 -std=c99 -Wall -Wextra -Werror $(CURL_CFLAGS) -o $@ $< $(CURL_LIBS)

bench: $(MODULE) $(BARE_GET)
	$(SERVE) $(RUN) $(LUA_BIN) bench/get.lua $(BARE_GET)
	$(SERVE) --profile ec2 $(RUN) $(LUA_BIN) bench/api.lua $(BARE_GET)
	$(SERVE) --profile ec2 $(RUN) bench/api-callgrind $(LUA_BIN) $(BARE_GET)
	$(MAKE) --no-print-directory bench-decode LUA=$(LUA)
	$(SERVE) $(RUN) $(LUA_BIN) bench/prometheus.lua
	$(SERVE) $(RUN) bench/prometheus-callgrind $(LUA_BIN)
	$(SERVE) --profile v4 $(RUN) bench/cli $(LUA_BIN)
	$(MAKE) bench-resty

# Under nginx: a cached ecs.task() location against a static one (wrk).
bench-resty: $(MODULE) $(NGINX_MODULE)
	$(SERVE) $(RUN) $(LUA_BIN) bench/resty.lua

# The decoder against lua-cjson, as built (SSE2/NEON) and with SIMD=0 (the
# portable SWAR scan) side by side: wall time, then callgrind instructions.
PORTABLE_BUILD = build/$(LUA)-nosimd
bench-decode: $(MODULE)
	$(MAKE) --no-print-directory SIMD=0 LUA=$(LUA)
	$(RUN) $(LUA_BIN) bench/decode.lua spec/fixtures 0.2 \
	    $(PORTABLE_BUILD)/ecs_metadata/core.so
	$(RUN) PORTABLE_CPATH='$(PORTABLE_BUILD)/?.so;;' \
	    bench/decode-callgrind $(LUA_BIN)

# The decoder's libFuzzer harness (clang, ASan, UBSan) for FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SIMD=$(if $(filter 0,$(SIMD)),0,1) fuzz/run

# The decoder's scans against their definition natively, on arm64 (NEON and
# SWAR) and big-endian arm64 under qemu-user, and its specs on arm64 Lua 5.4.
cross:
	spec/cross/run

install: $(MODULE)
	install -d $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_ABI)/ecs_metadata
	install -m 0755 $(MODULE) $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_ABI)/ecs_metadata/core.so
	cd lua && find ecs_metadata -name '*.lua' | while read -r f; do \
	    install -D -m 0644 "$$f" "$(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/$$f" || exit 1; \
	done
	install -d $(DESTDIR)$(PREFIX)/bin
	sed '1s|^#!.*|#!$(LUA_INTERPRETER)|' bin/ecs-metadata >$(BUILD)/ecs-metadata
	install -m 0755 $(BUILD)/ecs-metadata $(DESTDIR)$(PREFIX)/bin/ecs-metadata

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_ABI)/ecs_metadata \
	       $(DESTDIR)$(PREFIX)/share/lua/$(LUA_ABI)/ecs_metadata
	rm -f $(DESTDIR)$(PREFIX)/bin/ecs-metadata

clean:
	rm -rf build
