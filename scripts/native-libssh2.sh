#!/usr/bin/env bash
# Builds libssh2 as a native static library from the same pinned Debian source package as the wasm
# build (scripts/wasm-deps.lock, fetched, verified and patched by scripts/debian-sources.sh), with
# Debian's OpenSSL (libssl-dev) as crypto backend, into a cache folder outside the repository.
# The native SSH engine (ssh-engine/, its tests and fuzzer) links it.
#
#   prefix="$(bash scripts/native-libssh2.sh | tail -n1)"         # <prefix>/{include,lib/libssh2.a}
#   bash scripts/native-libssh2.sh --cc clang-14 --cflags "-O1 -fsanitize=fuzzer-no-link,address"
#   bash scripts/native-libssh2.sh --print-key [--cc CC] [--cflags FLAGS]
#
# --cc defaults to cc, --cflags to "-O2 -g". Cache:
# ${MANA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mana-websocket}/native-libssh2/<key>, where <key>
# names the libssh2 version and the compiler and hashes the lock lines of libssh2, our patches of it
# (scripts/patches/libssh2/series and the patches' sha256), the compiler's
# version text, the flags, the CMake options and Debian's OpenSSL version. <key>/.complete marks a
# finished build (written last, in a temporary folder renamed to <key>). The configure step of the
# native presets runs this script (root CMakeLists.txt), so the debug, asan, release and noexcept
# presets share one uninstrumented build; the fuzz preset builds its own, instrumented one.
# Progress goes to stderr; the last line of stdout is the absolute prefix. docs/wasm-dependencies.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lock_file="$here/wasm-deps.lock"
jobs="${JOBS:-2}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
started=$SECONDS
# Bump when the build steps change in a way the options below do not capture.
recipe_version=1

log() { printf 'native-libssh2: %s\n' "$*" >&2; }
die() {
  printf 'native-libssh2: error: %s\n' "$*" >&2
  exit 1
}
elapsed() { echo "$((SECONDS - started))s"; }

mode=build cc=cc cflags="-O2 -g"
while (($#)); do
  case "$1" in
    --cc) cc="${2:?--cc needs a compiler}" && shift ;;
    --cflags) cflags="${2?--cflags needs flags}" && shift ;;
    --print-key) mode=key ;;
    -h | --help)
      sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument '$1' (use --cc CC, --cflags FLAGS, --print-key)" ;;
  esac
  shift
done

for tool in "$cc" cmake apt-get dpkg-source dpkg-parsechangelog sha256sum flock; do
  command -v "$tool" >/dev/null || die "'$tool' not found (make deps installs scripts/debian-packages.txt)"
done
[[ -r /usr/include/openssl/evp.h ]] || die "Debian's OpenSSL headers are missing (package libssl-dev)"
[[ -r "$keyring" ]] || die "$keyring missing (package debian-archive-keyring)"
[[ -r "$lock_file" ]] || die "$lock_file missing"

cache_base="${MANA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mana-websocket}"
# Sources (apt/, sources/) are shared with scripts/wasm-deps.sh.
deb_sources_root="$cache_base/wasm-deps"
# shellcheck source-path=SCRIPTDIR
source "$here/debian-sources.sh"
[[ -n "${lock_version[libssh2]:-}" ]] || die "$lock_file: no pin for libssh2"

cmake_opts=(
  -DCMAKE_BUILD_TYPE=None
  -DBUILD_SHARED_LIBS=OFF
  -DBUILD_STATIC_LIBS=ON
  -DCRYPTO_BACKEND=OpenSSL
  -DENABLE_ZLIB_COMPRESSION=OFF
  -DBUILD_EXAMPLES=OFF
  -DBUILD_TESTING=OFF
  -DENABLE_DEBUG_LOGGING=OFF
)

# --- cache key -----------------------------------------------------------------------------------
cc_path="$(command -v "$cc")"
cc_version="$("$cc" -dumpversion 2>/dev/null)" || die "$cc -dumpversion failed"
openssl_version="$(dpkg-query -W -f='${Version}' libssl-dev 2>/dev/null || echo unknown)"
key_hash="$(
  {
    echo "recipe $recipe_version"
    grep '^libssh2 ' "$lock_file"
    own_patches_key libssh2
    "$cc" --version 2>&1 | head -n1
    echo "cc $(readlink -f "$cc_path")"
    echo "cflags $cflags"
    printf 'cmake %s\n' "${cmake_opts[@]}"
    echo "libssl-dev $openssl_version"
  } | sha256sum | cut -c1-10
)"
key="libssh2-${lock_version[libssh2]}_$(basename "$cc")-${cc_version}_${key_hash}"
cache_root="$cache_base/native-libssh2"
final_dir="$cache_root/$key"
prefix="$final_dir/prefix"

if [[ "$mode" == key ]]; then
  echo "$key"
  exit 0
fi


build() {
  cache_lock "$cache_root" native-libssh2
  if [[ -f "$final_dir/.complete" ]]; then return 0; fi
  rm -rf "$cache_root"/.tmp-* "$final_dir"
  fetch_sources libssh2
  work="$cache_root/.tmp-$key-$$"
  mkdir -p "$work"/{logs,build}
  run_step unpack unpack_source libssh2 "$work/src"
  local generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  export SOURCE_DATE_EPOCH
  SOURCE_DATE_EPOCH="$(dpkg-parsechangelog -l "$work/src/debian/changelog" -S Timestamp)"
  run_step configure env CC="$cc" cmake -S "$work/src" -B "$work/build" "${generator[@]}" \
    "${cmake_opts[@]}" -DCMAKE_C_FLAGS="$cflags -ffile-prefix-map=$work=/mana-native-libssh2" \
    -DCMAKE_INSTALL_PREFIX="$work/install"
  run_step build cmake --build "$work/build" -j"$jobs"
  run_step install cmake --install "$work/build"
  mkdir -p "$work/prefix/lib" "$work/prefix/include"
  cp "$work/install/lib/libssh2.a" "$work/prefix/lib/"
  cp "$work/install"/include/libssh2*.h "$work/prefix/include/"
  {
    echo "key $key"
    echo "source libssh2 ${lock_version[libssh2]}"
    echo "cc $cc_path ($("$cc" --version 2>&1 | head -n1))"
    echo "cflags $cflags"
    echo "cmake ${cmake_opts[*]}"
    echo "libssl-dev $openssl_version"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(elapsed)"
  } >"$work/build-info.txt"
  rm -rf "$work/src" "$work/build" "$work/install"
  touch "$work/.complete"
  mv -T "$work" "$final_dir"
  log "built $key in $(elapsed)"
}

if [[ -f "$final_dir/.complete" ]]; then
  log "up to date: $key"
else
  log "building $key (cache $cache_root)"
  build
fi
echo "$prefix"
