#!/usr/bin/env bash
# Checks the Makefile (`make makefile-check`, a step of `make lint`):
#  - reading it runs no shell: nothing is evaluated with $(shell ...) on every invocation (make
#    reads it here with SHELL pointing nowhere, which only a parse-time $(shell ...) would notice);
#  - `make help` and the .PHONY targets agree: every .PHONY target has a help line
#    (`  make NAME  what it does`), and every help line names a .PHONY target (names with an
#    upper-case placeholder, such as test-PRESET, stand for pattern rules and are not checked).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
make_cmd="${MAKE:-make}"
no_shell=/nonexistent/mana-makefile-check-sh

# make's database (-p) without running anything (-q); -q exits non-zero because `help` is never
# up to date, so only the output counts.
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT
database="$("$make_cmd" -f Makefile -pq help SHELL="$no_shell" 2>"$errors" || true)"
if grep -q "$no_shell" "$errors"; then
  echo "makefile-check: reading the Makefile runs a shell (a \$(shell ...) outside a recipe);" \
    "use a lazy = variable or compute it in the recipe that needs it" >&2
  exit 1
fi

# The .PHONY line of the database lists every phony target.
phony="$(sed -n 's/^\.PHONY: //p' <<<"$database" | tr ' ' '\n' | sed '/^$/d' | sort -u)"
if [[ -z "$phony" ]]; then
  echo "makefile-check: found no .PHONY targets in make's database" >&2
  exit 1
fi

helped="$("$make_cmd" -f Makefile -s help | sed -n 's/^ *make \([^ ]*\).*/\1/p' | sort -u)"
listed="$(grep -v '[A-Z]' <<<"$helped" || true)"

missing="$(comm -23 <(echo "$phony") <(echo "$helped"))"
unknown="$(comm -13 <(echo "$phony") <(echo "$listed"))"
if [[ -n "$missing" || -n "$unknown" ]]; then
  [[ -z "$missing" ]] || echo "makefile-check: .PHONY targets missing from make help:" $missing >&2
  [[ -z "$unknown" ]] || echo "makefile-check: make help names targets that are not .PHONY:" $unknown >&2
  exit 1
fi
echo "makefile-check: no shell while reading; make help names all $(wc -l <<<"$phony") .PHONY targets"
