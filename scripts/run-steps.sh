#!/usr/bin/env bash
# The step runner of `make test` and `make lint`: runs `make STEP` for each STEP in order.
#
#   MAKE=make scripts/run-steps.sh NAME STEP...     (NAME labels the output, e.g. "make test")
#
# Every step runs even when an earlier one failed, so one run reports everything; the exit status
# is non-zero when any step failed. Each step's wall time is printed, and a table of them at the
# end. The steps see MANA_DEPS_CHECKED=1: the caller checked the Debian packages once, so the
# steps' own `make deps` does not check them again.
set -uo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: run-steps.sh NAME STEP..." >&2
  exit 2
fi
name="$1"
shift
make_cmd="${MAKE:-make}"

failed=()
table=""
t_all=$(date +%s)
for step in "$@"; do
  echo "==> make $step"
  t0=$(date +%s)
  if MANA_DEPS_CHECKED=1 "$make_cmd" "$step"; then result=ok; else result=FAILED; failed+=("$step"); fi
  dt=$(($(date +%s) - t0))
  table+="$(printf '%-22s %6s s  %s' "$step" "$dt" "$result")"$'\n'
  echo "==> make $step: $result in $dt s"
done

printf '\n%s: wall time per step\n%s%-22s %6s s\n' "$name" "$table" total "$(($(date +%s) - t_all))"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "$name: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "$name: all steps passed"
