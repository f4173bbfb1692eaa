# mana-websocket front door. `make help` lists the targets. GNU make; presets in CMakePresets.json.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory

JOBS         ?= 2
FUZZ_SECONDS ?= 60
SIM_RUNS     ?= 1000
CLANG_TIDY   ?= clang-tidy-14
CLANG_FORMAT ?= clang-format-14

ROOT        := $(CURDIR)
BUILD       := build
BIN         := $(BUILD)/bin
DEBUG_DIR   := $(BUILD)/native-debug
FUZZ_DIR    := $(BUILD)/fuzz

# C++ sources checked by clang-format (every first-party directory that exists).
FORMAT_DIRS  = $(wildcard core tests gateway conformance bench wasm)
FORMAT_FILES = $(shell find $(FORMAT_DIRS) -type f \( -name '*.cpp' -o -name '*.hpp' \
                 -o -name '*.h' -o -name '*.cc' \) -not -path '*/corpus/*' 2>/dev/null | sort)
FUZZ_TARGETS = $(sort $(patsubst tests/fuzz/%.cpp,%,$(wildcard tests/fuzz/fuzz_*.cpp)))

.PHONY: help deps build test lint format format-check tidy purity fuzz sim demo clean \
        wasm wasm-debug js js-deps test-js lint-js format-js js-size


help:
	@echo "make deps          install missing Debian packages (scripts/debian-packages.txt)"
	@echo "make build         configure + build preset native-debug; executables in $(BIN)/"
	@echo "make test          deps, lint, then build+ctest: native-debug, native-noexcept, native-asan"
	@echo "make lint          clang-format check, core purity check, clang-tidy"
	@echo "make format        apply clang-format"
	@echo "make fuzz          libFuzzer, FUZZ_SECONDS=$(FUZZ_SECONDS) per target (preset fuzz)"
	@echo "make sim           $(BIN)/mana-sim --runs $(SIM_RUNS)"
	@echo "make demo          browser SSH demo (not available yet)"
	@echo "make test-PRESET   build + ctest one preset (native-debug, native-asan, native-release, ...)"
	@echo "make wasm          Emscripten build of the client core (preset wasm-release; wasm-debug too)"
	@echo "make js            @mana/websocket: tsc to $(JS_STAGE)/, npm pack to $(NPM_DIR)/"
	@echo "make test-js       Node tests of js-glue against the built wasm and the real gateway"
	@echo "make lint-js       tsc --noEmit + eslint + prettier --check over js-glue/"
	@echo "make format-js     apply prettier to js-glue/"
	@echo "make js-size       raw/gzip/brotli sizes of the wasm and the JS"
	@echo "make clean         remove $(BUILD)/"

deps:
	@bash scripts/install-deps.sh

# --- build -----------------------------------------------------------------------------------
configure-%:
	cmake --preset $*

build-%: configure-%
	cmake --build --preset $*

ctest-%:
	ctest --preset $* --output-on-failure -j$(JOBS)

test-%: build-%
	@$(MAKE) ctest-$*

build: build-native-debug
	@rm -rf $(BIN) && mkdir -p $(BIN)
	@find $(DEBUG_DIR)/bin -maxdepth 1 -type f -perm -u+x -exec cp -p {} $(BIN)/ \;
	@echo "executables: $$(ls $(BIN) | tr '\n' ' ')"

test-native-debug: build
	@$(MAKE) ctest-native-debug

# Every step runs even when an earlier one failed, so one run reports everything; the exit status
# is non-zero when any step failed.
test: deps
	@failed=""; \
	for step in lint test-native-debug test-js test-native-noexcept test-native-asan; do \
	  echo "==> make $$step"; \
	  $(MAKE) $$step || failed="$$failed $$step"; \
	done; \
	if [[ -n "$$failed" ]]; then echo "make test: FAILED:$$failed" >&2; exit 1; fi; \
	echo "make test: all steps passed"

# --- lint ------------------------------------------------------------------------------------
lint:
	@failed=""; \
	for step in format-check purity tidy lint-js; do \
	  $(MAKE) $$step || failed="$$failed $$step"; \
	done; \
	if [[ -n "$$failed" ]]; then echo "make lint: FAILED:$$failed" >&2; exit 1; fi; \
	echo "make lint: ok"

format-check:
	@if [[ -z "$(strip $(FORMAT_FILES))" ]]; then echo "format: no sources"; exit 0; fi; \
	$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_FILES) && echo "format: ok"

format:
	@if [[ -n "$(strip $(FORMAT_FILES))" ]]; then $(CLANG_FORMAT) -i $(FORMAT_FILES); fi

purity:
	@bash scripts/check-core-purity.sh

# clang-tidy over every first-party translation unit of the native-debug compile database
# (core/src, tests/, gateway/). A file's output is shown only when it has findings.
tidy: configure-native-debug
	@files="$$(grep -o '"file": *"[^"]*"' $(DEBUG_DIR)/compile_commands.json \
	  | sed -e 's/^"file": *"//' -e 's/"$$//' \
	  | grep -E '^$(ROOT)/(core/src|tests|gateway)/' | sort -u)"; \
	if [[ -z "$$files" ]]; then echo "tidy: no sources"; exit 0; fi; \
	echo "tidy: $$(wc -w <<<"$$files") files"; \
	xargs -P $(JOBS) -n 1 bash -c 'out="$$($(CLANG_TIDY) -p $(DEBUG_DIR) --quiet "$$0" 2>&1)" \
	  || { printf "%s\n" "$$out" | grep -v "warnings generated" >&2; exit 1; }' <<<"$$files" \
	  && echo "tidy: ok"

# --- wasm + TypeScript client (wasm/, js-glue/) ------------------------------------------------
JS_DIR      := js-glue
JS_STAGE    := $(BUILD)/js/package
NPM_DIR     := $(BUILD)/npm
WASM_DIR    := $(BUILD)/wasm-release
JS_VERSION   = $(shell node -p "require('./$(JS_DIR)/package.json').version")
MANA_GATEWAY ?= $(ROOT)/$(DEBUG_DIR)/bin/mana-gateway

# Emscripten runs its JS tools with the machine's Node, which must see Debian's node-acorn: the
# wasm presets set NODE_PATH=/usr/share/nodejs.
wasm: build-wasm-release
	@ls -l $(WASM_DIR)/mana-core.mjs $(WASM_DIR)/mana-core.wasm

wasm-debug: build-wasm-debug

# npm ci only when package-lock.json changed (node_modules/.package-lock.json is npm's own stamp).
js-deps: $(JS_DIR)/node_modules/.package-lock.json
$(JS_DIR)/node_modules/.package-lock.json: $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "js-deps: npm not found (Node 20 with npm is needed)" >&2; exit 1; }
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error

js: wasm js-deps
	@rm -rf $(JS_STAGE) && mkdir -p $(NPM_DIR)
	cd $(JS_DIR) && npm run --silent build
	@rm -f $(NPM_DIR)/mana-websocket-*.tgz
	npm pack --silent $(JS_STAGE) --pack-destination $(NPM_DIR) >/dev/null
	@ls -l $(NPM_DIR)/mana-websocket-$(JS_VERSION).tgz

# Unit tests (scripted server) and the loopback test against mana-gateway (built by `make build`,
# which `make test` runs first).
test-js: js
	@if [[ ! -x "$(MANA_GATEWAY)" ]]; then $(MAKE) build; fi
	cd $(JS_DIR) && MANA_GATEWAY="$(MANA_GATEWAY)" MANA_NPM_TARBALL="$(ROOT)/$(NPM_DIR)/mana-websocket-$(JS_VERSION).tgz" \
	  node --test --test-reporter=spec test/*.test.mjs

format-js: js-deps
	cd $(JS_DIR) && npx --no-install prettier --write --log-level warn .

lint-js: js-deps
	cd $(JS_DIR) && npx --no-install tsc -p tsconfig.json && npx --no-install eslint --max-warnings 0 . \
	  && npx --no-install prettier --check --log-level warn .
	@echo "lint-js: ok"

js-size: js
	@printf '%-44s %10s %10s %10s\n' file raw gzip brotli; \
	for f in $(JS_STAGE)/dist/internal/mana-core.wasm $(JS_STAGE)/dist/internal/mana-core.mjs \
	         $(NPM_DIR)/mana-websocket-$(JS_VERSION).tgz; do \
	  printf '%-44s %10s %10s %10s\n' "$${f#$(BUILD)/}" "$$(wc -c <"$$f")" \
	    "$$(gzip -9c "$$f" | wc -c)" "$$(node -e "process.stdout.write(String(require('zlib').brotliCompressSync(require('fs').readFileSync(process.argv[1])).length))" "$$f")"; \
	done; \
	js="$$(cat $(JS_STAGE)/dist/*.js)"; \
	printf '%-44s %10s %10s %10s\n' "js/package/dist/*.js (TS output)" "$$(printf %s "$$js" | wc -c)" \
	  "$$(printf %s "$$js" | gzip -9c | wc -c)" "$$(printf %s "$$js" | node -e "let b=[];process.stdin.on('data',d=>b.push(d)).on('end',()=>process.stdout.write(String(require('zlib').brotliCompressSync(Buffer.concat(b)).length)))")"

# --- fuzz / sim / demo -----------------------------------------------------------------------
fuzz: build-fuzz
	@if [[ -z "$(FUZZ_TARGETS)" ]]; then echo "fuzz: no tests/fuzz/fuzz_*.cpp targets"; exit 0; fi; \
	failed=""; \
	for t in $(FUZZ_TARGETS); do \
	  corpus="$(BUILD)/fuzz-corpus/$$t"; artifacts="$(BUILD)/fuzz-artifacts/$$t"; \
	  mkdir -p "$$corpus" "$$artifacts"; \
	  seeds=""; [[ -d tests/fuzz/corpus/$$t ]] && seeds="tests/fuzz/corpus/$$t"; \
	  echo "==> fuzz $$t for $(FUZZ_SECONDS)s"; \
	  if ! $(FUZZ_DIR)/bin/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=25 -print_final_stats=1 \
	      -artifact_prefix="$$artifacts/" "$$corpus" $$seeds; then \
	    failed="$$failed $$t"; \
	  fi; \
	done; \
	if [[ -n "$$failed" ]]; then \
	  echo "make fuzz: FAILED:$$failed (inputs in $(BUILD)/fuzz-artifacts/)" >&2; exit 1; \
	fi; \
	echo "make fuzz: no crashes"

sim: build
	@if [[ ! -x $(BIN)/mana-sim ]]; then echo "sim: mana-sim is not built (tests/sim/mana_sim.cpp missing)" >&2; exit 1; fi
	$(BIN)/mana-sim --runs $(SIM_RUNS)

demo:
	@echo "make demo: not available yet. The demo (SSH in the browser through the gateway) arrives" >&2
	@echo "with the gateway, wasm client and browser SSH work; today the repository holds the" >&2
	@echo "protocol core and its tests (make test)." >&2
	@exit 1

clean:
	rm -rf $(BUILD)
