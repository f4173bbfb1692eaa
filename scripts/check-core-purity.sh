#!/usr/bin/env bash
# Fails when core/ includes anything that does I/O, reads a clock, draws randomness or pulls a
# platform/networking dependency. core/ is sans-I/O (docs/architecture.md): time, randomness and
# I/O are injected by the host (gateway, wasm glue, tests).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Matched against the target of every #include in core/.
forbidden='(boost/|asio|emscripten|sys/socket|netinet/|arpa/|(thread|chrono|random|iostream|fstream|mutex|future|condition_variable|ctime)[>"])'
pattern="^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"][^>\"]*${forbidden}"

if [[ ! -d core ]]; then
  echo "core-purity: no core/ directory"
  exit 0
fi

if hits="$(grep -rnE --include='*.hpp' --include='*.h' --include='*.cpp' --include='*.cc' \
  --include='*.ipp' --include='*.inl' "$pattern" core/)"; then
  echo "core-purity: core/ must stay sans-I/O; forbidden includes found:" >&2
  echo "$hits" >&2
  exit 1
fi
echo "core-purity: ok"
