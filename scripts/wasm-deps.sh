#!/usr/bin/env bash
# Builds OpenSSL libcrypto and libssh2 as static wasm libraries (Emscripten) from the Debian trixie
# source packages pinned in scripts/wasm-deps.lock, into a cache folder outside the repository.
#
#   prefix="$(bash scripts/wasm-deps.sh | tail -n1)"   # <prefix>/{include,lib}
#   bash scripts/wasm-deps.sh --check                  # build if needed, then link + run a smoke test
#   bash scripts/wasm-deps.sh --relock                 # re-download the pinned versions, rewrite sha256s
#   bash scripts/wasm-deps.sh --print-key              # print the cache key only
#   bash scripts/wasm-deps.sh --sources                # fetch + verify the pinned sources only;
#                                                      # prints their folder (third-party notices)
#
# Cache: ${MANA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mana-websocket}/wasm-deps/<key>, where <key>
# encodes the pinned versions, the emcc version and a short hash of the lock file, our own patches
# (scripts/patches/<name>/series) and the build flags.
# <key>/.complete marks a finished build; builds run in a temporary folder renamed to <key> at the
# end, so an interrupted build never looks complete. Progress goes to stderr; the last line of
# stdout is the absolute prefix. Sources are fetched with an isolated apt configuration (own
# sources, lists and cache under the cache folder; Release signatures checked against
# debian-archive-keyring) whose mirror URIs are copied from this machine's apt sources.
# See docs/wasm-dependencies.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lock_file="$here/wasm-deps.lock"
smoke_src="$here/wasm-deps-smoke.c"
jobs="${JOBS:-2}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
started=$SECONDS

# Bump when the build steps change in a way the flags below do not capture.
# 2: SOURCE_DATE_EPOCH from debian/changelog, build path mapped out of libssh2 (reproducible .a).
recipe_version=2

openssl_configure_opts=(
  linux-generic32
  no-asm no-threads no-shared no-dso no-engine no-module no-apps no-tests no-docs no-async
  no-sock no-dgram no-ui-console no-afalgeng no-secure-memory no-autoload-config no-legacy no-pic
  no-err
  # Algorithms and protocols SSH does not use (EC, ECX, DH, RSA, AES, SHA-1/2/3, MD5 and HMAC
  # stay; libssh2 has its own chacha20-poly1305, so OpenSSL's ChaCha20 and Poly1305 go).
  no-dsa no-des no-rc2 no-rc4 no-bf no-cast no-idea no-seed no-camellia no-aria
  no-sm2 no-sm3 no-sm4 no-whirlpool no-md4 no-mdc2 no-rmd160 no-gost no-siphash no-siv no-ocb
  no-scrypt no-argon2 no-ml-dsa no-ml-kem no-slh-dsa no-ec2m
  no-cms no-ts no-ocsp no-ct no-cmp no-srp no-http no-quic no-srtp no-psk no-comp
  no-chacha no-poly1305 no-blake2 no-cmac no-rfc3779 no-filenames no-multiblock
)
openssl_cflags="-Os"
libssh2_cmake_opts=(
  -DCMAKE_BUILD_TYPE=MinSizeRel
  "-DCMAKE_C_FLAGS_MINSIZEREL=-Os -DNDEBUG"
  -DBUILD_SHARED_LIBS=OFF
  -DBUILD_STATIC_LIBS=ON
  -DCRYPTO_BACKEND=OpenSSL
  -DENABLE_ZLIB_COMPRESSION=OFF
  -DBUILD_EXAMPLES=OFF
  -DBUILD_TESTING=OFF
  -DENABLE_DEBUG_LOGGING=OFF
)

log() { printf 'wasm-deps: %s\n' "$*" >&2; }
die() {
  printf 'wasm-deps: error: %s\n' "$*" >&2
  exit 1
}
elapsed() { echo "$((SECONDS - started))s"; }

mode=build
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  --relock) mode=relock ;;
  --print-key) mode=key ;;
  --sources) mode=sources ;;
  -h | --help)
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown argument '$1' (use --check, --relock, --print-key, --sources or no argument)" ;;
esac

# Emscripten's JS tools run on the machine's Node, which must see Debian's node-acorn.
export NODE_PATH="${NODE_PATH:+$NODE_PATH:}/usr/share/nodejs"
for tool in emcc emar emranlib emcmake cmake make perl apt-get dpkg-source dpkg-parsechangelog \
  sha256sum flock; do
  command -v "$tool" >/dev/null || die "'$tool' not found (make deps installs scripts/debian-packages.txt)"
done
[[ -r "$keyring" ]] || die "$keyring missing (package debian-archive-keyring)"
[[ -r "$lock_file" ]] || die "$lock_file missing"

# The lock (scripts/wasm-deps.lock), the isolated apt and fetch_sources / unpack_source are
# shared with scripts/native-libssh2.sh: scripts/debian-sources.sh.
deb_sources_root="${MANA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mana-websocket}/wasm-deps"
# shellcheck source-path=SCRIPTDIR
source "$here/debian-sources.sh"
for name in libssh2 openssl; do
  [[ -n "${lock_version[$name]:-}" ]] || die "$lock_file: no pin for $name"
done

# --- cache key -----------------------------------------------------------------------------------
emcc_version="$(emcc -dumpversion 2>/dev/null)" || die "emcc -dumpversion failed"
flags_hash="$(
  {
    echo "recipe $recipe_version"
    grep -v '^#' "$lock_file"
    for name in "${lock_names[@]}"; do own_patches_key "$name"; done
    printf 'openssl %s\n' "${openssl_configure_opts[*]}" "CFLAGS=$openssl_cflags"
    printf 'libssh2 %s\n' "${libssh2_cmake_opts[@]}"
    echo "emcc $emcc_version"
  } | sha256sum | cut -c1-10
)"
key="libssh2-${lock_version[libssh2]}_openssl-${lock_version[openssl]}_emcc-${emcc_version}_${flags_hash}"
cache_root="${MANA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mana-websocket}/wasm-deps"
final_dir="$cache_root/$key"
prefix="$final_dir/prefix"

if [[ "$mode" == key ]]; then
  echo "$key"
  exit 0
fi

# --- --sources -----------------------------------------------------------------------------------
if [[ "$mode" == sources ]]; then
  mkdir -p "$cache_root"
  exec 9>"$cache_root/.lock"
  flock 9
  fetch_sources
  echo "$src_dir"
  exit 0
fi

# --- --relock ------------------------------------------------------------------------------------
if [[ "$mode" == relock ]]; then
  setup_apt
  apt_update
  work="$(mktemp -d "${TMPDIR:-/tmp}/wasm-deps-relock.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  specs=()
  for name in "${lock_names[@]}"; do specs+=("$name=${lock_version[$name]}"); done
  log "downloading ${specs[*]}"
  (cd "$work" && apt_source "${specs[@]}")
  new_lock="$work/lock"
  grep '^#' "$lock_file" >"$new_lock" || true
  for name in "${lock_names[@]}"; do
    version="${lock_version[$name]}"
    dsc="$(cd "$work" && ls -- "${name}_${version#*:}.dsc")"
    files=("$dsc")
    while read -r f; do files+=("$f"); done < <(awk \
      '/^Checksums-Sha256:/ {on = 1; next} on && /^ / {print $3; next} {on = 0}' "$work/$dsc")
    for f in "${files[@]}"; do
      printf '%s %s %s %s\n' "$name" "$version" "$f" "$(sha256sum "$work/$f" | cut -d' ' -f1)"
    done >>"$new_lock"
  done
  diff -u "$lock_file" "$new_lock" >&2 || true
  cp "$new_lock" "$lock_file"
  log "wrote $lock_file ($(elapsed)); review the diff, then run scripts/wasm-deps.sh"
  exit 0
fi

# --- build ---------------------------------------------------------------------------------------
# Steps run through run_step (scripts/debian-sources.sh): output to logs/<step>.log, the log's tail
# and a failure on error, the time in step_seconds.

# emcc is a Python program: each call costs about 1 s of start-up on these machines, and libcrypto is
# some 700 small C files (that start-up was most of its build time). write_fast_cc puts a wrapper
# named emcc first in PATH for the libcrypto build: a compile-only call (-c) goes straight to emcc's
# clang with the flags emcc would add (asked once per distinct set of emcc-relevant arguments with
# `emcc ... --cflags`, then cached in the build folder); anything else (linking, preprocessing,
# probing) goes to the real emcc. It keeps the name emcc because OpenSSL records the compiler's
# name in the library (OpenSSL_version(OPENSSL_CFLAGS)): the archive is byte-identical to one built
# through emcc. check_fast_cc compiles one real libcrypto compile line both ways and keeps the
# wrapper only when the objects are byte-identical.
write_fast_cc() {
  mkdir -p "$work/fastcc/bin" "$work/fastcc/flags"
  cat >"$work/fastcc/bin/emcc" <<'WRAPPER'
#!/usr/bin/env bash
set -euo pipefail
real_emcc=@REAL_EMCC@
compile=0 relevant=()
for a in "$@"; do
  case "$a" in
    -c) compile=1 ;;
    -std=*) ;;
    -E | -M | -MM | -v | --version | -dumpversion | -s* | -flto* | -emit-llvm | --*)
      exec "$real_emcc" "$@" ;;
    -O* | -f* | -m* | -g* | -pthread) relevant+=("$a") ;;
  esac
done
[[ $compile == 1 ]] || exec "$real_emcc" "$@"
cache="@FLAGS_DIR@/$(printf '%s\n' "${relevant[@]}" | sha256sum | cut -c1-16)"
if [[ ! -s "$cache" ]]; then
  # emcc prints its own flags followed by the ones it was given: keep its own.
  read -r -a words <<<"$("$real_emcc" "${relevant[@]}" --cflags)"
  n=$((${#words[@]} - ${#relevant[@]}))
  printf '%s\n' "${words[@]:0:n}" >"$cache.$$" && mv "$cache.$$" "$cache"
fi
mapfile -t own <"$cache"
exec @CLANG@ "${own[@]}" "$@"
WRAPPER
  sed -i -e "s|@REAL_EMCC@|$(command -v emcc)|" -e "s|@FLAGS_DIR@|$work/fastcc/flags|" \
    -e "s|@CLANG@|$(em-config LLVM_ROOT)/clang|" "$work/fastcc/bin/emcc"
  chmod +x "$work/fastcc/bin/emcc"
}

# Succeeds when the wrapper builds the same object as emcc for a real libcrypto compile line (the
# Makefile's, from `make -n`).
check_fast_cc() {
  local bld="$1" probe="$work/fastcc/probe" obj=crypto/evp/libcrypto-lib-digest.o line cmd
  mkdir -p "$probe"
  # (grep -m1 may end make -n early: its status does not count.)
  line="$( (make -C "$bld" -n "$obj" 2>/dev/null || true) | grep -m1 -- '^emcc .* -c ')" || line=""
  [[ "$line" == *"-o $obj "* ]] || return 1
  cmd="${line/-o $obj /-o $probe/probe.o }"
  (cd "$bld" && eval "$cmd") >"$probe/log" 2>&1 && mv "$probe/probe.o" "$probe/emcc.o" &&
    (cd "$bld" && PATH="$work/fastcc/bin:$PATH" && eval "$cmd") >>"$probe/log" 2>&1 &&
    cmp -s "$probe/emcc.o" "$probe/probe.o"
}

build_openssl() {
  local src="$work/src/openssl" bld="$work/build/openssl"
  mkdir -p "$bld"
  write_fast_cc
  # Configure directly (not via emconfigure, which sets CROSS_COMPILE=em and makes the build look
  # for "ememcc"). SOURCE_DATE_EPOCH fixes the "built on" date that util/mkbuildinf.pl writes into
  # crypto/cversion.c (the only build-dependent bytes of libcrypto.a).
  export SOURCE_DATE_EPOCH
  SOURCE_DATE_EPOCH="$(dpkg-parsechangelog -l "$src/debian/changelog" -S Timestamp)"
  # shellcheck disable=SC2016  # $1/$@ belong to the inner bash
  # Configure probes the compiler through emcc; the build's compile calls go through the wrapper.
  run_step openssl-configure env -u CROSS_COMPILE CC=emcc AR=emar RANLIB=emranlib \
    CFLAGS="$openssl_cflags" bash -c 'cd "$1" && shift && exec perl "$@"' _ "$bld" \
    "$src/Configure" "${openssl_configure_opts[@]}" --prefix=/mana-wasm --openssldir=/mana-wasm/ssl
  run_step openssl-generated make -C "$bld" -j"$jobs" build_generated
  local path="$PATH"
  if check_fast_cc "$bld"; then
    path="$work/fastcc/bin:$PATH"
  else
    log "openssl: the direct compile differs from emcc's (see $work/fastcc/probe/log); using emcc"
  fi
  run_step openssl-libcrypto env PATH="$path" make -C "$bld" -j"$jobs" libcrypto.a
  mkdir -p "$work/prefix/include/openssl" "$work/prefix/lib"
  cp "$bld/libcrypto.a" "$work/prefix/lib/"
  # Static headers from the source tree, generated ones (configuration.h, opensslv.h, ...) from
  # the build tree.
  cp "$src"/include/openssl/*.h "$work/prefix/include/openssl/"
  cp "$bld"/include/openssl/*.h "$work/prefix/include/openssl/"
}

build_libssh2() {
  local src="$work/src/libssh2" bld="$work/build/libssh2" generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  export SOURCE_DATE_EPOCH
  SOURCE_DATE_EPOCH="$(dpkg-parsechangelog -l "$src/debian/changelog" -S Timestamp)"
  # The prefix map keeps the temporary build path out of __FILE__ strings (src/crypto.c), so the
  # archive does not depend on where it was built.
  run_step libssh2-configure emcmake cmake -S "$src" -B "$bld" "${generator[@]}" \
    "${libssh2_cmake_opts[@]}" \
    -DCMAKE_C_FLAGS="-ffile-prefix-map=$work=/mana-wasm-deps" \
    -DCMAKE_INSTALL_PREFIX="$work/install-libssh2" \
    -DOPENSSL_ROOT_DIR="$work/prefix" \
    -DOPENSSL_INCLUDE_DIR="$work/prefix/include" \
    -DOPENSSL_CRYPTO_LIBRARY="$work/prefix/lib/libcrypto.a" \
    -DOPENSSL_USE_STATIC_LIBS=TRUE
  run_step libssh2-build cmake --build "$bld" -j"$jobs"
  run_step libssh2-install cmake --install "$bld"
  cp "$work/install-libssh2"/lib/libssh2.a "$work/prefix/lib/"
  cp "$work/install-libssh2"/include/libssh2*.h "$work/prefix/include/"
}

build_all() {
  cache_lock "$cache_root" wasm-deps
  if [[ -f "$final_dir/.complete" ]]; then return 0; fi
  # We hold the lock: leftovers of interrupted builds and an incomplete final dir are garbage.
  rm -rf "$cache_root"/.tmp-* "$final_dir"
  fetch_sources
  work="$cache_root/.tmp-$key-$$"
  mkdir -p "$work"/{logs,src,build}
  local name
  for name in "${lock_names[@]}"; do
    run_step "$name-unpack" unpack_source "$name" "$work/src/$name"
  done
  build_openssl
  build_libssh2
  {
    echo "key $key"
    for name in "${lock_names[@]}"; do echo "source $name ${lock_version[$name]}"; done
    echo "emcc $emcc_version"
    echo "openssl-configure ${openssl_configure_opts[*]} CFLAGS=$openssl_cflags"
    echo "libssh2-cmake ${libssh2_cmake_opts[*]}"
    for step in "${!step_seconds[@]}"; do echo "seconds $step ${step_seconds[$step]}"; done | sort
    for f in "$work"/prefix/lib/*.a; do
      echo "size $(basename "$f") $(wc -c <"$f")"
      echo "sha256 $(basename "$f") $(sha256sum "$f" | cut -d' ' -f1)"
    done
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(elapsed)"
  } >"$work/build-info.txt"
  if [[ "${MANA_WASM_DEPS_KEEP_BUILD:-0}" != 1 ]]; then
    rm -rf "$work/src" "$work/build" "$work/install-libssh2"
  fi
  touch "$work/.complete"
  mv -T "$work" "$final_dir"
  log "built $key in $(elapsed): $(cd "$prefix/lib" && wc -c libcrypto.a libssh2.a | head -n2 | tr '\n' ' ')"
}

smoke_check() {
  [[ -r "$smoke_src" ]] || die "$smoke_src missing"
  local dir
  dir="$(mktemp -d "${TMPDIR:-/tmp}/wasm-deps-check.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$dir'" EXIT
  local t0=$SECONDS
  log "check: emcc $smoke_src against $prefix"
  emcc -Os -sSINGLE_FILE=1 -sENVIRONMENT=node -I"$prefix/include" "$smoke_src" \
    "$prefix/lib/libssh2.a" "$prefix/lib/libcrypto.a" -o "$dir/smoke.js" >"$dir/emcc.log" 2>&1 || {
    cat "$dir/emcc.log" >&2
    die "check: linking the smoke test failed"
  }
  log "check: linked in $((SECONDS - t0))s ($(wc -c <"$dir/smoke.js") bytes single-file JS)"
  node "$dir/smoke.js" >&2 || die "check: smoke test failed"
  log "check: ok"
}

if [[ -f "$final_dir/.complete" ]]; then
  log "up to date: $key"
else
  log "building $key (cache $cache_root)"
  build_all
fi
if [[ "$mode" == check ]]; then smoke_check; fi
log "elapsed $(elapsed)"
echo "$prefix"
