# msgtrk: a thin wrapper around the Meson build directories.
#
#   make          build build/msgtrkd and build/msgtrk
#   make test     install test packages, build normal + ASan/UBSan + fuzz,
#                 run every test; the last line is "N passed, N failed"
#   make run      build and start msgtrkd in the foreground on an example
#                 configuration
#   make fuzz     run each libFuzzer target for FUZZ_SECONDS (default 60)
#   make soak     20 kill -9 crash rounds and make fuzz-long (10 min a target)
#   make bench    msgtrkd against Postfix side by side; rewrites
#                 bench/RESULTS.md (23 minutes on 2 cores: 5 SMTP
#                 workloads x 1/10/50 sessions x 3 rounds, MTQP, memory;
#                 not part of make test)
#   make format   reformat the sources with .clang-format
#   make install  install the programs, man pages, example configuration
#                 and systemd unit under PREFIX (default /usr/local),
#                 staged under DESTDIR if set

MESON ?= meson
NINJA ?= ninja
FUZZ_SECONDS ?= 60
FUZZ_LONG_SECONDS ?= 600
CRASH_ROUNDS ?= 20
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps deps-test build build-tests test run install fuzz fuzz-long \
    soak bench format clean

all: build

deps:
	@build-aux/deps.sh build

deps-test:
	@build-aux/deps.sh test

# build/ has the unit tests only when cmocka is there: `make` and
# `make run` need only the build packages (deps.sh build); `make test`
# installs cmocka and turns the tests on (build-tests).
build: deps
	@[ -f build/build.ninja ] || $(MESON) setup build --prefix=$(PREFIX) \
	    -Dtests=$$(pkg-config --exists cmocka && echo true || echo false)
	$(NINJA) -C build

build-tests: deps-test build
	@$(MESON) introspect --buildoptions build | python3 -c \
	    'import json, sys; sys.exit(0 if [o for o in json.load(sys.stdin) \
	    if o["name"] == "tests" and o["value"]] else 1)' || \
	    $(MESON) configure build -Dtests=true
	$(NINJA) -C build

build-asan/build.ninja:
	$(MESON) setup build-asan -Db_sanitize=address,undefined \
	    -Db_lundef=false -Dbuildtype=debug

build-fuzz/build.ninja:
	CC=clang $(MESON) setup build-fuzz -Dfuzz=true -Dtests=false \
	    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

test: deps-test build-tests build-asan/build.ninja build-fuzz/build.ninja
	$(NINJA) -C build-asan
	$(NINJA) -C build-fuzz
	@FUZZ_SECONDS=$${FUZZ_SECONDS_SMOKE:-5} tests/run-tests.sh \
	    build build-asan --fuzz build-fuzz --integration build-asan \
	    --crash build

fuzz: deps-test build-fuzz/build.ninja
	$(NINJA) -C build-fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run-tests.sh --fuzz build-fuzz

run: build
	@examples/run.sh

# meson installs under the prefix build/ was set up with; PREFIX given
# here wins.
install: build
	@[ "$$($(MESON) introspect --buildoptions build | python3 -c \
	    'import json, sys; print([o["value"] for o in json.load(sys.stdin) \
	    if o["name"] == "prefix"][0])')" = "$(PREFIX)" ] || \
	    $(MESON) configure build --prefix=$(PREFIX)
	$(MESON) install -C build $(if $(DESTDIR),--destdir $(abspath $(DESTDIR)))

# Every libFuzzer target for FUZZ_LONG_SECONDS (>= 10 minutes) under
# ASan+UBSan; crashing inputs are kept under fuzz-artifacts/.
fuzz-long: deps-test build-fuzz/build.ninja
	$(NINJA) -C build-fuzz
	@FUZZ_ARTIFACTS=$(CURDIR)/fuzz-artifacts FUZZ_SECONDS=$(FUZZ_LONG_SECONDS) \
	    tests/run-tests.sh --fuzz build-fuzz

# 20 kill -9 rounds of 2,000 messages (every kill point 5 times), then
# fuzz-long.  Not part of make test, which runs 2 short rounds.
soak: deps-test build fuzz-long
	tests/crash/run.sh build $(CRASH_ROUNDS) 2000

bench: deps-test build
	bench/run-all.sh build

format:
	clang-format -i $$(find src include tests -name '*.[ch]')

clean:
	rm -rf build build-asan build-fuzz
