#!/usr/bin/env bash
# Installs the Debian packages `make bench` needs (websockify, socat, OpenSSH server and client,
# openssl, procps) when they are missing. Node 20 with npm must already be on PATH (the
# repository's JS tooling needs it too); its absence is reported, not installed.
# Idempotent: when everything is present it only checks and exits 0.
set -euo pipefail

packages=(websockify socat openssh-server openssh-client openssl procps)

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "bench-deps: $tool not found (Node 20 with npm is needed)" >&2; exit 1; }
done

missing=()
for pkg in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "bench-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

echo "bench-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
