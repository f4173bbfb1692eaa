# shellcheck shell=bash disable=SC2154  # lock_file, keyring, deb_sources_root: set by the caller
# Sourced by scripts/wasm-deps.sh and scripts/native-libssh2.sh: the one pin of the Debian source
# packages (scripts/wasm-deps.lock), their fetch through an isolated, signature-checked apt
# configuration, the sha256 check against the lock and the unpack with Debian's patch series.
#
# The caller defines log and die, and sets lock_file (the lock), keyring (the Debian archive
# keyring) and deb_sources_root (the cache folder holding apt/ and sources/). Sourcing parses the
# lock into lock_names, lock_version[name], lock_files[name] and lock_sha[file]. Functions:
#   fetch_sources [NAME...]   download (when missing) and verify the pinned files (default: all)
#   unpack_source NAME DEST   dpkg-source -x NAME's .dsc into DEST, then our own patches of NAME
#                             (scripts/patches/NAME/series, sha256-checked) on top of Debian's
#   own_patches_key NAME      the lines (series + patch sha256s) that go into a cache key
#   setup_apt, apt_update, apt_source SPEC...   the isolated apt (wasm-deps.sh --relock)
#   cache_lock DIR WHAT       hold DIR/.lock (fd 9) until the caller exits, waiting for another build
#   run_step STEP CMD...      CMD with its output in $work/logs/STEP.log; its tail and die on failure;
#                             the seconds in step_seconds[STEP]
# See docs/wasm-dependencies.md ("How the sources are fetched").

# --- lock file ---------------------------------------------------------------------------------
# Lines: name version file sha256. Fills lock_names (unique, in order), lock_version[name],
# lock_files[name] (space separated) and lock_sha[file].
declare -A lock_version=() lock_files=() lock_sha=()
lock_names=()
while read -r name version file sha rest; do
  [[ -z "${name:-}" || "$name" == \#* ]] && continue
  [[ -n "${sha:-}" && -z "${rest:-}" && "$sha" =~ ^[0-9a-f]{64}$ ]] ||
    die "$lock_file: malformed line for '$name' (want: name version file sha256)"
  if [[ -z "${lock_version[$name]:-}" ]]; then
    lock_names+=("$name")
    lock_version[$name]="$version"
  elif [[ "${lock_version[$name]}" != "$version" ]]; then
    die "$lock_file: $name has two versions (${lock_version[$name]} and $version)"
  fi
  lock_files[$name]+="$file "
  lock_sha[$file]="$sha"
done <"$lock_file"

# --- isolated apt --------------------------------------------------------------------------------
# Mirror URIs copied from this machine's apt sources (deb822 .sources and one-line sources.list):
# the first URI whose suites are not "-security" is the main archive, the first with a "-security"
# suite is the security archive. MANA_DEBIAN_MIRROR / MANA_DEBIAN_SECURITY_MIRROR override them.
machine_uris() {
  local files=()
  shopt -s nullglob
  files=(/etc/apt/sources.list.d/*.sources)
  shopt -u nullglob
  if ((${#files[@]})); then
    awk '
      function flush() {
        if (uris != "" && enabled != "no" && types ~ /deb/) {
          kind = (suites ~ /-security/) ? "security" : "main"
          n = split(uris, u, /[ \t]+/)
          for (i = 1; i <= n; i++) if (u[i] != "") print kind, u[i]
        }
        uris = ""; suites = ""; types = ""; enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "uris:" { sub(/^[^:]*:[ \t]*/, ""); uris = $0; next }
      tolower($1) == "suites:" { sub(/^[^:]*:[ \t]*/, ""); suites = $0; next }
      tolower($1) == "types:" { sub(/^[^:]*:[ \t]*/, ""); types = $0; next }
      tolower($1) == "enabled:" { sub(/^[^:]*:[ \t]*/, ""); enabled = tolower($0); next }
      END { flush() }
    ' "${files[@]}"
  fi
  shopt -s nullglob
  files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  shopt -u nullglob
  ((${#files[@]})) || return 0
  awk '
    $1 == "deb" || $1 == "deb-src" {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if (i + 1 <= NF) print (($(i + 1) ~ /-security/) ? "security" : "main"), $i
    }
  ' "${files[@]}" 2>/dev/null || true
}

apt_dir="$deb_sources_root/apt"
apt_opts=()
setup_apt() {
  local main_uri="${MANA_DEBIAN_MIRROR:-}" security_uri="${MANA_DEBIAN_SECURITY_MIRROR:-}" kind uri
  while read -r kind uri; do
    [[ "$uri" =~ ^(https?|file):// ]] || continue
    if [[ "$kind" == main && -z "$main_uri" ]]; then main_uri="$uri"; fi
    if [[ "$kind" == security && -z "$security_uri" ]]; then security_uri="$uri"; fi
  done < <(machine_uris)
  [[ -n "$main_uri" ]] ||
    die "no Debian archive URI found in /etc/apt/sources.list(.d); set MANA_DEBIAN_MIRROR"
  mkdir -p "$apt_dir"/{sources.list.d,preferences.d,lists/partial,cache/archives/partial}
  {
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie trixie-updates\nComponents: main\nSigned-By: %s\n' \
      "$main_uri" "$keyring"
    if [[ -n "$security_uri" ]]; then
      printf '\nTypes: deb-src\nURIs: %s\nSuites: trixie-security\nComponents: main\nSigned-By: %s\n' \
        "$security_uri" "$keyring"
    fi
  } >"$apt_dir/sources.list.d/mana-wasm-deps.sources"
  log "apt sources: $main_uri (trixie, trixie-updates)${security_uri:+, $security_uri (trixie-security)}"
  apt_opts=(
    -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "Dir::Cache::pkgcache="
    -o "Dir::Cache::srcpkgcache="
    -o "APT::Sandbox::User=root"
    -o "Acquire::AllowInsecureRepositories=false"
    -o "Acquire::Languages=none"
  )
}

apt_update() {
  log "apt-get update (isolated lists in $apt_dir/lists)"
  apt-get "${apt_opts[@]}" -q update >"$apt_dir/update.log" 2>&1 || {
    tail -n 20 "$apt_dir/update.log" >&2
    die "isolated apt-get update failed (log: $apt_dir/update.log)"
  }
  # apt exits 0 on some fetch/signature failures: make them fatal.
  if grep -E '^(W|E): ' "$apt_dir/update.log" | grep -qiE 'sign|NO_PUBKEY|not signed|fail|insecure'; then
    grep -E '^(W|E): ' "$apt_dir/update.log" >&2
    die "isolated apt-get update reported fetch or signature problems (log: $apt_dir/update.log)"
  fi
}

# Downloads the given name=version source packages into the current directory.
apt_source() {
  apt-get "${apt_opts[@]}" -q source --download-only "$@" >apt-source.log 2>&1 || {
    tail -n 20 apt-source.log >&2
    die "apt-get source --download-only $* failed (log: $PWD/apt-source.log)"
  }
}

# --- sources -------------------------------------------------------------------------------------
src_dir="$deb_sources_root/sources"

# Succeeds when every pinned file is present in $src_dir with its pinned sha256.
sources_ok() {
  local name file
  for name in "$@"; do
    for file in ${lock_files[$name]}; do
      [[ -f "$src_dir/$file" ]] || return 1
      [[ "$(sha256sum "$src_dir/$file" | cut -d' ' -f1)" == "${lock_sha[$file]}" ]] || return 1
    done
  done
}

# Verifies every pinned file (clear message naming the file) and that each .dsc lists exactly the
# pinned files with the pinned sha256 (so an unlisted file can never be unpacked).
verify_sources() {
  local name file got dsc sha _size f listed
  for name in "$@"; do
    for file in ${lock_files[$name]}; do
      [[ -f "$src_dir/$file" ]] || die "$file (${name} ${lock_version[$name]}) was not downloaded"
      got="$(sha256sum "$src_dir/$file" | cut -d' ' -f1)"
      [[ "$got" == "${lock_sha[$file]}" ]] ||
        die "sha256 mismatch for $file: expected ${lock_sha[$file]} (scripts/wasm-deps.lock), got $got"
    done
    dsc=""
    for file in ${lock_files[$name]}; do [[ "$file" == *.dsc ]] && dsc="$file"; done
    [[ -n "$dsc" ]] || die "$lock_file: no .dsc pinned for $name"
    listed=0
    while read -r sha _size f; do
      [[ -n "${lock_sha[$f]:-}" ]] || die "$dsc lists $f, which scripts/wasm-deps.lock does not pin"
      [[ "${lock_sha[$f]}" == "$sha" ]] || die "$dsc gives sha256 $sha for $f; the lock pins ${lock_sha[$f]}"
      listed=$((listed + 1))
    done < <(awk '/^Checksums-Sha256:/ {on = 1; next} on && /^ / {print $1, $2, $3; next} {on = 0}' \
      "$src_dir/$dsc")
    ((listed > 0)) || die "$dsc has no Checksums-Sha256 field"
  done
}

fetch_sources() {
  local names=("$@") specs=() name n=0
  ((${#names[@]})) || names=("${lock_names[@]}")
  mkdir -p "$src_dir"
  # One fetch at a time per cache (wasm-deps.sh and native-libssh2.sh may run side by side).
  exec 8>"$deb_sources_root/.sources-lock"
  flock 8
  if sources_ok "${names[@]}"; then
    log "sources: the pinned files of ${names[*]} are present in $src_dir"
  else
    setup_apt
    apt_update
    for name in "${names[@]}"; do specs+=("$name=${lock_version[$name]}"); done
    log "downloading ${specs[*]} into $src_dir"
    (cd "$src_dir" && apt_source "${specs[@]}")
  fi
  verify_sources "${names[@]}"
  exec 8>&-
  for name in "${names[@]}"; do for _ in ${lock_files[$name]}; do n=$((n + 1)); done; done
  log "sources: sha256 of $n files match scripts/wasm-deps.lock"
}

# unpack_source NAME DEST: dpkg-source -x of NAME's pinned .dsc into DEST (applies
# debian/patches/series), then apply_own_patches. Call fetch_sources first.
unpack_source() {
  local name="$1" dest="$2" file dsc=""
  for file in ${lock_files[$name]}; do [[ "$file" == *.dsc ]] && dsc="$file"; done
  [[ -n "$dsc" ]] || die "$lock_file: no .dsc pinned for $name"
  dpkg-source -x "$src_dir/$dsc" "$dest"
  apply_own_patches "$name" "$dest"
}

# --- our own patches -----------------------------------------------------------------------------
# scripts/patches/NAME/series lists "file sha256" lines (# comments); each file is a -p1 patch
# applied in order after Debian's series. Each patch's header gives its reason (DEP-3).
own_patches_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/patches"

# own_patches NAME: prints "file sha256" of NAME's series (nothing when it has none).
own_patches() {
  local series="$own_patches_dir/$1/series"
  [[ -f "$series" ]] || return 0
  awk '!/^[ \t]*(#|$)/ { print $1, $2 }' "$series"
}

# own_patches_key NAME: the series lines and the patches' actual sha256, for a cache key.
own_patches_key() {
  local file sha
  while read -r file sha; do
    echo "patch $1 $file $sha $(sha256sum "$own_patches_dir/$1/$file" 2>/dev/null | cut -d' ' -f1)"
  done < <(own_patches "$1")
}

apply_own_patches() {
  local name="$1" dest="$2" file sha got
  while read -r file sha; do
    [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "scripts/patches/$name/series: malformed line for '$file'"
    [[ -f "$own_patches_dir/$name/$file" ]] || die "scripts/patches/$name/$file missing"
    got="$(sha256sum "$own_patches_dir/$name/$file" | cut -d' ' -f1)"
    [[ "$got" == "$sha" ]] ||
      die "sha256 mismatch for scripts/patches/$name/$file: series pins $sha, file has $got"
    patch -d "$dest" -p1 --forward --batch --no-backup-if-mismatch <"$own_patches_dir/$name/$file" ||
      die "scripts/patches/$name/$file does not apply to $name ${lock_version[$name]}"
    echo "applied scripts/patches/$name/$file"
  done < <(own_patches "$name")
}

# --- builds ----------------------------------------------------------------------------------------
cache_lock() {
  mkdir -p "$1"
  exec 9>"$1/.lock"
  if ! flock -n 9; then
    log "another $2 build holds $1/.lock; waiting"
    flock 9
  fi
}

declare -A step_seconds=()
run_step() {
  local step="$1" t0=$SECONDS
  shift
  log "$step ..."
  if ! "$@" >"$work/logs/$step.log" 2>&1; then
    tail -n 30 "$work/logs/$step.log" >&2
    die "$step failed (full log: $work/logs/$step.log)"
  fi
  step_seconds[$step]=$((SECONDS - t0))
  log "$step done in ${step_seconds[$step]}s"
}
