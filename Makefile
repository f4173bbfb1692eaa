# mana-websocket front door. GNU make; presets in CMakePresets.json. The table of contents below is
# what `make help` prints. scripts/check-makefile.sh (`make makefile-check`, part of `make lint`)
# fails when a .PHONY target is missing from it, or when reading this file runs a shell: lists and
# versions are computed by the recipes that need them, never by a $(shell ...) on every invocation.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory

JOBS         ?= 2
FUZZ_SECONDS ?= 60
FUZZ_CPU_HOURS ?= 2
FUZZ_MIN     ?= fuzz_ssh_engine=1
SIM_RUNS     ?= 1000
SOAK_MINUTES ?= 5
CLANG_TIDY   ?= clang-tidy-14
CLANG_FORMAT ?= clang-format-14
CTEST_ARGS   ?=

ROOT        := $(CURDIR)
BUILD       := build
BIN         := $(BUILD)/bin
DEBUG_DIR   := $(BUILD)/native-debug
FUZZ_DIR    := $(BUILD)/fuzz

# First-party directories whose C++ sources clang-format checks (corpora excluded).
FORMAT_DIRS  = $(wildcard core tests gateway conformance bench wasm ssh-engine)
FUZZ_TARGETS = $(sort $(patsubst tests/fuzz/%.cpp,%,$(wildcard tests/fuzz/fuzz_*.cpp)))

# Steps of `make test` and `make lint`, run by scripts/run-steps.sh (every step runs, wall times
# in a table at the end). Overridable for a partial run: make test TEST_STEPS="purity sim".
TEST_STEPS ?= lint test-unsanitized test-js e2e demo-check test-native-noexcept test-native-asan
LINT_STEPS ?= makefile-check format-check purity tidy lint-js lint-e2e

.PHONY: help makefile-check deps build test lint format format-check tidy purity fuzz \
        fuzz-campaign fuzz-minimize fuzz-coverage sim soak demo clean demo-check demo-build demo-deps demo-gateway \
        wasm wasm-debug js js-deps test-js lint-js format-js js-size \
        e2e e2e-deps lint-e2e format-e2e bench-browser bench bench-deps gen-errc test-unsanitized

define HELP
Setup
  make deps             install the missing Debian packages of scripts/debian-packages.txt
                        (checked again only when that list or dpkg's package database changed)
  make js-deps          npm ci in js-glue/ when its package-lock.json changed
  make e2e-deps         npm ci in e2e/ when its package-lock.json changed
  make demo-deps        npm ci in web-demo/ when its package-lock.json changed
  make bench-deps       Debian packages, websockify/socat/sshd and npm ci in bench/ for make bench

Build and test (tests/README.md: the tests of each component and how to run just those)
  make build            configure + build preset native-debug; executables in $(BIN)/
  make test             deps, then these steps, each timed (TEST_STEPS=... runs others):
                        $(TEST_STEPS)
  make build-PRESET     configure + build one preset (native-debug, native-asan, ...)
  make test-PRESET      build + ctest one preset; CTEST_ARGS="-L gateway" passes options to ctest
  make ctest-PRESET     ctest one built preset (CTEST_ARGS as above)
  make test-unsanitized native-debug's mana-gateway (the Node and browser tests use it) and the
                        tests native-asan cannot run (label unsanitized); make test's debug step
  make sim              $(BIN)/mana-sim --runs $(SIM_RUNS)
  make fuzz             libFuzzer, FUZZ_SECONDS=$(FUZZ_SECONDS) per target (preset fuzz);
                        build/fuzz-report.json
  make fuzz-campaign    background fuzzing at idle priority until FUZZ_CPU_HOURS=$(FUZZ_CPU_HOURS)
                        CPU hours (FUZZ_MIN=$(FUZZ_MIN)); ledger build/fuzz-ledger.jsonl
  make fuzz-minimize    merge the campaign's finds into tests/fuzz/corpus/<t>/campaign/
  make fuzz-coverage    line coverage of the fuzz corpora (preset fuzz-coverage);
                        build/fuzz-coverage.json
  make soak             extended reliability tier, not in make test (<= 25 min): 10 000 idle
                        sessions, slow readers, echo under bulk load, SOAK_MINUTES=$(SOAK_MINUTES)
                        churn + the fault tier under ASan

Lint and format
  make lint             these steps, each timed (LINT_STEPS=... runs others):
                        $(LINT_STEPS)
  make makefile-check   make help names every .PHONY target; reading the Makefile runs no shell
  make format-check     clang-format --dry-run -Werror over the C++ sources
  make purity           core/ stays sans-I/O (scripts/check-core-purity.sh)
  make tidy             clang-tidy over core/src, tests/, gateway/ (passing files cached)
  make lint-js          tsc --noEmit + eslint + prettier --check over js-glue/ (web-demo/: prettier)
  make lint-e2e         tsc --noEmit + eslint + prettier --check over e2e/
  make format           apply clang-format
  make format-js        apply prettier to js-glue/
  make format-e2e       apply prettier to e2e/

Browser client (wasm/, js-glue/, e2e/)
  make wasm             Emscripten build of the client core + SSH engine (preset wasm-release;
                        WASM_SSH=OFF: core only)
  make wasm-debug       the same with preset wasm-debug (-sASSERTIONS=2)
  make wasm-deps        wasm libcrypto + libssh2 from pinned Debian sources into a cache; prints
                        the prefix
  make js               @mana/websocket: tsc to $(JS_STAGE)/, npm pack to $(NPM_DIR)/
  make test-js          Node tests of js-glue against the built wasm and the real gateway
  make js-size          raw/gzip/brotli sizes: wasm, glue, JS, tarball (scripts/js-size.mjs)
  make gen-errc         regenerate js-glue/src/generated/errc.ts from the core's error table
                        (core/include/mana/core/errc.def; ctest errc_ts_fresh checks it)
  make e2e              Playwright suite (e2e/) in Debian's Chromium against the real gateway

Demo (web-demo/)
  make demo             SSH in the browser: sshd + gateway + xterm.js page on
                        http://127.0.0.1:$(DEMO_PORT)/ (Ctrl-C stops)
  make demo-check       the demo headless in Chromium: login, echo, resize, exit 3; prints the
                        transcript
  make demo-build       build the web demo (web-demo/) into $(DEMO_OUT)/
  make demo-gateway     build only mana-gateway of native-debug

Benchmarks
  make bench            every peer interleaved: build/bench/report.json + docs/benchmarks.md
                        (QUICK=1: 64 MiB, ~5 min)
  make bench-browser    in-page SSH download, keystroke->glyph latency, sizes in Chromium:
                        build/bench/browser.json (BENCH_QUICK=1: short)

Other
  make help             this table of contents
  make clean            remove $(BUILD)/

Variables: JOBS=$(JOBS) CTEST_ARGS= TEST_STEPS= LINT_STEPS= FUZZ_SECONDS= SIM_RUNS= SOAK_MINUTES=
  DEMO_PORT= WASM_SSH=ON|OFF QUICK=1 BENCH_QUICK=1 CHROMIUM=$(CHROMIUM) MANA_GATEWAY=<path>
endef

help:
	@: $(info $(HELP))

makefile-check:
	@MAKE="$(MAKE)" bash scripts/check-makefile.sh

# npm ci in DIR only when its package-lock.json changed (DIR/node_modules/.package-lock.json is
# npm's own stamp): js-glue/, e2e/, web-demo/ and bench/.
%/node_modules/.package-lock.json: %/package.json %/package-lock.json
	@command -v npm >/dev/null || { echo "npm ci in $*/: npm not found (Node 20 with npm)" >&2; exit 1; }
	cd $* && npm ci --no-audit --no-fund --loglevel=error

# The Debian packages: scripts/install-deps.sh checks them with one dpkg-query and installs what is
# missing. The stamp skips even that check until the list or dpkg's package database (any install
# or removal) changes, so `make demo` does not check on every run. The steps of `make test` and
# `make lint` run with MANA_DEPS_CHECKED=1 (checked once by the caller).
DEPS_STAMP := $(BUILD)/.deps-checked
deps: $(if $(MANA_DEPS_CHECKED),,$(DEPS_STAMP))
	@:
$(DEPS_STAMP): scripts/debian-packages.txt scripts/install-deps.sh $(wildcard /var/lib/dpkg/status)
	@bash scripts/install-deps.sh
	@mkdir -p $(@D) && touch $@

# --- build -----------------------------------------------------------------------------------
configure-%:
	cmake --preset $*

build-%: configure-%
	cmake --build --preset $*

ctest-%:
	ctest --preset $* --output-on-failure -j$(JOBS) $(CTEST_ARGS)

test-%: build-%
	@$(MAKE) ctest-$*

build: build-native-debug
	@rm -rf $(BIN) && mkdir -p $(BIN)
	@find $(DEBUG_DIR)/bin -maxdepth 1 -type f -perm -u+x -exec cp -p {} $(BIN)/ \;
	@echo "executables: $$(ls $(BIN) | tr '\n' ' ')"

test-native-debug: build
	@$(MAKE) ctest-native-debug

# make test's native-debug step. Its full ctest would repeat native-asan's (the same Debug-mode
# tests; ASan + UBSan add checks), so it builds only what the later steps use (mana-gateway) and
# what the tests with label `unsanitized` need (CPU and timing bounds calibrated for unsanitized
# builds, which is why native-asan does not define them), and runs those.
test-unsanitized: configure-native-debug
	cmake --build --preset native-debug --target mana-gateway mana_clock_step_shim
	@$(MAKE) ctest-native-debug CTEST_ARGS="-L unsanitized"

# The npm package is built once per `make test`: `make js` skips its work when its inputs are
# unchanged. scripts/run-steps.sh: every step runs, each timed, a table at the end.
test: deps
	@MAKE="$(MAKE)" bash scripts/run-steps.sh "make test" $(TEST_STEPS)

# --- lint ------------------------------------------------------------------------------------
lint:
	@MAKE="$(MAKE)" bash scripts/run-steps.sh "make lint" $(LINT_STEPS)

# The C++ sources of FORMAT_DIRS, found when a format recipe runs.
FORMAT_FIND = find $(FORMAT_DIRS) -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \
                -o -name '*.cc' \) -not -path '*/corpus/*' -print0 | sort -z

format-check:
	@$(FORMAT_FIND) | xargs -0r $(CLANG_FORMAT) --dry-run -Werror
	@echo "format: ok"

format:
	@$(FORMAT_FIND) | xargs -0r $(CLANG_FORMAT) -i

purity:
	@bash scripts/check-core-purity.sh

# clang-tidy over every first-party translation unit of the native-debug compile database
# (core/src, tests/, gateway/; not yet ssh-engine/src, whose k-prefixed constants break the naming
# rule). A file's output is shown only when it has findings. Passing units are cached outside the
# tree, keyed by the preprocessed unit, its flags and the tidy config (scripts/tidy.py;
# MANA_TIDY_CACHE=0 turns the cache off).
tidy: configure-native-debug
	@python3 scripts/tidy.py --build $(DEBUG_DIR) --root $(ROOT) --tidy $(CLANG_TIDY) --jobs $(JOBS) \
	  --include '^(core/src|tests|gateway)/'

# --- wasm + TypeScript client (wasm/, js-glue/) ------------------------------------------------
JS_DIR      := js-glue
JS_STAGE    := $(BUILD)/js/package
NPM_DIR     := $(BUILD)/npm
WASM_DIR    := $(BUILD)/wasm-release
JS_VERSION   = $(shell node -p "require('./$(JS_DIR)/package.json').version")
MANA_GATEWAY ?= $(ROOT)/$(DEBUG_DIR)/bin/mana-gateway

# Emscripten runs its JS tools with the machine's Node, which must see Debian's node-acorn: the
# wasm presets set NODE_PATH=/usr/share/nodejs.
# The SSH engine (mana-ssh.{mjs,wasm}, CMake option MANA_WASM_SSH) links libssh2 + libcrypto built
# by scripts/wasm-deps.sh (cached outside the repo; the last line of its output is the prefix, passed
# at configure time). WASM_SSH=OFF builds the client core only and needs no dependencies.
WASM_SSH ?= ON
# Configures once per settings: an existing build folder configured with the same MANA_WASM_SSH and
# dependency prefix is left as it is (cmake --build re-runs configure when a CMakeLists changed).
wasm-configure-%:
	@if [[ "$(WASM_SSH)" == ON ]]; then \
	  prefix="$$(bash scripts/wasm-deps.sh | tail -n1)"; \
	  want=("MANA_WASM_SSH:BOOL=ON" "MANA_WASM_DEPS_PREFIX:PATH=$$prefix"); \
	  args=(-DMANA_WASM_SSH=ON -DMANA_WASM_DEPS_PREFIX="$$prefix"); \
	else want=("MANA_WASM_SSH:BOOL=OFF"); args=(-DMANA_WASM_SSH=OFF); fi; \
	cache=$(BUILD)/$*/CMakeCache.txt; \
	if [[ -f "$$cache" ]] && (for w in "$${want[@]}"; do grep -qxF "$$w" "$$cache" || exit 1; done); then \
	  echo "wasm: $(BUILD)/$* is configured"; else cmake --preset $* "$${args[@]}"; fi

wasm: wasm-configure-wasm-release
	cmake --build --preset wasm-release
	@ls -l $(WASM_DIR)/mana-core.mjs $(WASM_DIR)/mana-core.wasm \
	  $(if $(filter ON,$(WASM_SSH)),$(WASM_DIR)/mana-ssh.mjs $(WASM_DIR)/mana-ssh.wasm)

wasm-debug: wasm-configure-wasm-debug
	cmake --build --preset wasm-debug

# libcrypto.a + libssh2.a for wasm from pinned Debian source packages (scripts/wasm-deps.lock), built
# once into a cache outside the repo; prints the prefix. WASM_DEPS_ARGS=--check also runs the smoke
# test. docs/wasm-dependencies.md.
.PHONY: wasm-deps
wasm-deps:
	@bash scripts/wasm-deps.sh $(WASM_DEPS_ARGS)

js-deps: $(JS_DIR)/node_modules/.package-lock.json

# The package is rebuilt only when an input changed: js-glue's sources, scripts and manifests, the
# wasm build's outputs and the settings stage.mjs reads (a content hash kept in $(NPM_DIR)/.inputs).
# So the steps of one `make test` (test-js, e2e, demo-check) build it once.
JS_INPUTS = $(JS_DIR)/package.json $(JS_DIR)/package-lock.json $(JS_DIR)/tsconfig.json \
            $(JS_DIR)/tsconfig.build.json $(JS_DIR)/README.md LICENSE scripts/third_party_notices.py \
            scripts/wasm-deps.lock \
            $(shell find $(JS_DIR)/src $(JS_DIR)/scripts -type f 2>/dev/null | sort)
js: wasm js-deps
	@tgz=$(NPM_DIR)/mana-websocket-$(JS_VERSION).tgz; \
	key="$$( { sha256sum $(JS_INPUTS) $(wildcard $(WASM_DIR)/mana-*.mjs $(WASM_DIR)/mana-*.wasm); \
	  echo "ssh=$(WASM_SSH) minify=$${MANA_MINIFY_GLUE:-} wasm=$${MANA_WASM_DIR:-} sshdir=$${MANA_WASM_SSH_DIR:-}"; } \
	  | sha256sum | cut -c1-32)"; \
	if [[ -f "$$tgz" && -f $(JS_STAGE)/package.json && "$$(cat $(NPM_DIR)/.inputs 2>/dev/null)" == "$$key" ]]; then \
	  echo "js: $$tgz is up to date"; exit 0; fi; \
	rm -rf $(JS_STAGE) $(NPM_DIR)/.inputs && mkdir -p $(NPM_DIR); \
	python3 scripts/third_party_notices.py $(BUILD)/js/THIRD_PARTY_NOTICES; \
	(cd $(JS_DIR) && MANA_REQUIRE_SSH=$(if $(filter ON,$(WASM_SSH)),1,0) npm run --silent build); \
	rm -f $(NPM_DIR)/mana-websocket-*.tgz; \
	npm pack --silent $(JS_STAGE) --pack-destination $(NPM_DIR) >/dev/null; \
	echo "$$key" >$(NPM_DIR)/.inputs; \
	ls -l "$$tgz"

# Unit tests (scripted server) and the loopback test against mana-gateway (built by `make build`,
# which `make test` runs first).
test-js: js
	@if [[ ! -x "$(MANA_GATEWAY)" ]]; then $(MAKE) build; fi
	cd $(JS_DIR) && MANA_GATEWAY="$(MANA_GATEWAY)" MANA_NPM_TARBALL="$(ROOT)/$(NPM_DIR)/mana-websocket-$(JS_VERSION).tgz" \
	  node --test --test-reporter=spec test/*.test.mjs

# The JS error mapping from the core's error table (ctest errc_ts_fresh fails while it is stale).
gen-errc:
	python3 scripts/gen_errc.py

format-js: js-deps
	cd $(JS_DIR) && npx --no-install prettier --write --log-level warn .

lint-js: js-deps
	cd $(JS_DIR) && npx --no-install tsc -p tsconfig.json && npx --no-install eslint --max-warnings 0 . \
	  && npx --no-install prettier --check --log-level warn .
	@# web-demo/ is type-checked by demo-build (it needs the built package); here only its format.
	cd web-demo && ../$(JS_DIR)/node_modules/.bin/prettier --check --log-level warn src index.html vite.config.mjs
	cd tools/devkit && ../../$(JS_DIR)/node_modules/.bin/prettier --check --log-level warn '*.mjs' README.md
	@echo "lint-js: ok"

# The rows bench/browser records too (scripts/js-size.mjs; docs/benchmarks.md).
js-size: js
	@node scripts/js-size.mjs

# --- browser end-to-end tests (e2e/, Playwright on Debian's Chromium) ---------------------------
E2E_DIR  := e2e
CHROMIUM ?= /usr/bin/chromium

e2e-deps: $(E2E_DIR)/node_modules/.package-lock.json

# The fixtures start the gateway, the targets, the static server and the proxies themselves.
# The SSH journeys (e2e/ssh/) drive the built web demo (demo-build).
e2e: js e2e-deps demo-build
	@if [[ ! -x "$(MANA_GATEWAY)" ]]; then $(MAKE) build; fi
	@if [[ ! -x "$(CHROMIUM)" ]]; then echo "e2e: $(CHROMIUM) is missing (make deps installs chromium)" >&2; exit 1; fi
	cd $(E2E_DIR) && MANA_GATEWAY="$(MANA_GATEWAY)" CHROMIUM="$(CHROMIUM)" npx --no-install playwright test --reporter=list

lint-e2e: e2e-deps
	cd $(E2E_DIR) && npx --no-install tsc -p tsconfig.json && npx --no-install eslint --max-warnings 0 . \
	  && npx --no-install prettier --check --log-level warn .
	@echo "lint-e2e: ok"

format-e2e: e2e-deps
	cd $(E2E_DIR) && npx --no-install prettier --write --log-level warn .

# Browser benchmarks (bench/browser/README.md): real sshd, the native-release gateway when built
# (else native-debug), Debian's Chromium. Hard bound 8.5 min (BENCH_QUICK=1: 3 short rounds, 3.5 min).
BENCH_QUICK ?=
bench-browser: demo-build
	@if [[ ! -x $(BUILD)/native-release/bin/mana-gateway && ! -x "$(MANA_GATEWAY)" ]]; then $(MAKE) demo-gateway; fi
	@if [[ ! -x "$(CHROMIUM)" ]]; then echo "bench-browser: $(CHROMIUM) is missing (make deps installs chromium)" >&2; exit 1; fi
	BENCH_QUICK="$(BENCH_QUICK)" CHROMIUM="$(CHROMIUM)" \
	  timeout -k 10 $(if $(filter 1,$(BENCH_QUICK)),210,500) node bench/browser/run.mjs

# Benchmarks (bench/README.md, docs/benchmarks.md): every peer interleaved in one run, not part of
# `make test`. Installs websockify/socat/sshd and the Node relay's `ws`, builds the
# native-release gateway, proxy and mana-bench, then bench/run.py writes build/bench/report.json and
# the generated section of docs/benchmarks.md. QUICK=1: 64 MiB streams, 1 000 idle sessions.
BENCH_DIR := bench
REL_DIR   := $(BUILD)/native-release
QUICK     ?=
# Debian packages first (Node included), then the benchmark packages, then npm ci in bench/.
bench-deps: deps
	@bash scripts/bench-deps.sh
	@$(MAKE) $(BENCH_DIR)/node_modules/.package-lock.json

# The report's make_seconds counts from the start of this make (installs and builds included):
# the recipe's parent is make, whose elapsed seconds ps reports (procps: bench-deps).
bench: bench-deps
	@if [[ ! -f $(REL_DIR)/CMakeCache.txt ]]; then cmake --preset native-release; fi
	cmake --build $(REL_DIR) -j$(JOBS) --target mana-bench mana-gateway mana-proxy
	python3 $(BENCH_DIR)/run.py --bin $(REL_DIR)/bin --started-at $$(( $$(date +%s) - $$(ps -o etimes= -p $$PPID) )) \
	  $(if $(filter 1,$(QUICK)),--quick)

# --- fuzz / sim / demo -----------------------------------------------------------------------
# Every fuzz target (tests/fuzz/fuzz_*.cpp) for FUZZ_SECONDS each; CPU s, execs, corpus and
# crashes per target in build/fuzz-report.json (scripts/fuzz-campaign.py).
fuzz: configure-fuzz
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target $(FUZZ_TARGETS)
	python3 scripts/fuzz-campaign.py run --seconds $(FUZZ_SECONDS) --build $(BUILD) \
	  --fuzz-dir $(FUZZ_DIR) $(FUZZ_TARGETS)

# A campaign: two fuzzers at a time on CPU time nobody else wants (SCHED_IDLE), 5-minute slices,
# until the ledger (build/fuzz-ledger.jsonl, every run of `make fuzz` counts) holds FUZZ_CPU_HOURS
# and each FUZZ_MIN target its share; `touch build/fuzz-campaign.stop` ends it after the slices
# running. `make fuzz-minimize` then keeps what adds coverage to the committed seeds.
fuzz-campaign: configure-fuzz
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target $(FUZZ_TARGETS)
	python3 scripts/fuzz-campaign.py campaign --cpu-hours $(FUZZ_CPU_HOURS) --slice 300 \
	  $(addprefix --min ,$(FUZZ_MIN)) --build $(BUILD) --fuzz-dir $(FUZZ_DIR) $(FUZZ_TARGETS)
	python3 scripts/fuzz-campaign.py summary --build $(BUILD)

fuzz-minimize: configure-fuzz
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target $(FUZZ_TARGETS)
	python3 scripts/fuzz-campaign.py minimize --build $(BUILD) --fuzz-dir $(FUZZ_DIR) $(FUZZ_TARGETS)

# Line coverage (clang source-based, preset fuzz-coverage) of each target's corpus replay:
# build/fuzz-coverage.json and a table (decoders per target, every core/gateway file merged).
fuzz-coverage: configure-fuzz-coverage
	cmake --build $(BUILD)/fuzz-coverage -j$(JOBS) --target $(addsuffix _replay,$(FUZZ_TARGETS))
	python3 scripts/fuzz-campaign.py coverage --build $(BUILD) --cov-dir $(BUILD)/fuzz-coverage \
	  $(FUZZ_TARGETS)

sim: build
	@if [[ ! -x $(BIN)/mana-sim ]]; then echo "sim: mana-sim is not built (tests/sim/mana_sim.cpp missing)" >&2; exit 1; fi
	$(BIN)/mana-sim --runs $(SIM_RUNS)

# Extended reliability tier (docs/reliability.md). Uses build/native-release's gateway if it is
# built, else native-debug's; builds only the gateway and the clock fault shim of native-debug
# and native-asan.
soak:
	cmake --preset native-debug >/dev/null
	cmake --build $(DEBUG_DIR) -j$(JOBS) --target mana-gateway mana_clock_step_shim
	cmake --preset native-asan >/dev/null
	cmake --build $(BUILD)/native-asan -j$(JOBS) --target mana-gateway mana_clock_step_shim
	SOAK_MINUTES=$(SOAK_MINUTES) /usr/bin/python3 tests/gateway/soak_test.py

# --- web demo (web-demo/, scripts/demo.mjs) ----------------------------------------------------
DEMO_DIR  := web-demo
DEMO_OUT  := $(BUILD)/web-demo
DEMO_PORT ?= 8080

demo-deps: $(DEMO_DIR)/node_modules/.package-lock.json

# Type-checks and bundles the page with Vite, offline, against the built package (build/js/package).
demo-build: js demo-deps
	@if [[ ! -f $(JS_STAGE)/dist/internal/mana-ssh.mjs ]]; then \
	  echo "demo-build: $(JS_STAGE) has no SSH engine (mana-ssh.mjs): the wasm build needs MANA_WASM_SSH=ON" >&2; exit 1; fi
	cd $(DEMO_DIR) && npx --no-install tsc -p tsconfig.json && npx --no-install vite build
	@echo "demo-build: $(DEMO_OUT)/ ($$(du -sb $(DEMO_OUT) | cut -f1) bytes)"

# The gateway alone (not the whole native-debug tree with its tests).
demo-gateway: configure-native-debug
	cmake --build --preset native-debug --target mana-gateway

# deps first (it may apt-get install what the builds need), then the builds.
demo: deps
	@$(MAKE) demo-gateway demo-build
	node scripts/demo.mjs --port $(DEMO_PORT)

demo-check: deps
	@$(MAKE) demo-gateway demo-build
	node scripts/demo.mjs --check

clean:
	rm -rf $(BUILD)
