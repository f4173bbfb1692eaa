#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/debian-packages.txt (or the file given as $1) that
# are not installed yet. Idempotent: when everything is present it only checks and exits 0.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
list="${1:-scripts/debian-packages.txt}"

packages=()
while IFS= read -r line || [[ -n "$line" ]]; do
  line="${line%%#*}"
  for word in $line; do packages+=("$word"); done
done <"$list"

# One dpkg-query for the whole list (it reports the packages it knows; unknown ones are missing).
declare -A installed=()
while read -r pkg status; do
  if [[ "$status" == "install ok installed" ]]; then installed["$pkg"]=1; fi
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for pkg in "${packages[@]}"; do
  if [[ -z "${installed[$pkg]:-}" ]]; then missing+=("$pkg"); fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps: all ${#packages[@]} packages from $list are installed"
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
