#!/usr/bin/env bash
# Installs the Debian packages `make bench` needs (scripts/bench-packages.txt: websockify, socat,
# OpenSSH server and client, openssl, procps) when they are missing, with scripts/install-deps.sh.
# Node 20 with npm must already be on PATH (the repository's JS tooling needs it too); its
# absence is reported, not installed. Idempotent.
set -euo pipefail

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "bench-deps: $tool not found (Node 20 with npm is needed)" >&2; exit 1; }
done

here="$(dirname "${BASH_SOURCE[0]}")"
exec bash "$here/install-deps.sh" scripts/bench-packages.txt
