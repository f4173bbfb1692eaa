#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes THIRD_PARTY_NOTICES: the notices of everything compiled into the shipped wasm modules.

    python3 scripts/third_party_notices.py OUT          # generate (make js runs it)
    python3 scripts/third_party_notices.py --check FILE # does FILE carry every component's notice?

Components (COMPONENTS below; the package test checks that every static library the wasm build
links has a row here):
  - libssh2 and OpenSSL libcrypto, linked into mana-ssh.wasm: debian/copyright and the upstream
    licence file, read from the pinned Debian source packages (scripts/wasm-deps.lock) that
    `scripts/wasm-deps.sh --sources` fetched and verified; the sha256 of every file read is checked
    against the lock again here.
  - nlohmann/json (headers compiled into both modules) and the Emscripten runtime (musl libc,
    libc++, libc++abi, compiler-rt, dlmalloc, the generated glue): the copyright files of the
    installed Debian packages that built them (nlohmann-json3-dev, emscripten); for Emscripten only
    the paragraphs that cover the runtime parts compiled into our output, with their licence texts.
  - xterm.js (@xterm/headless and @xterm/addon-serialize, MIT), bundled into dist/mana-worker.js
    (the session worker's screen model): versions from js-glue/package-lock.json, the copyright
    lines read from the installed packages' bundles (they ship no LICENSE file), and the MIT text.
"""
import hashlib
import os
import re
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK = os.path.join(ROOT, "scripts", "wasm-deps.lock")

# name, heading, how it reaches the output, marker lines that --check requires.
COMPONENTS = [
    ("libssh2", "libssh2", "statically linked into dist/internal/mana-ssh.wasm",
     ["Sara Golemon", "Redistribution and use in source and binary forms"]),
    ("openssl", "OpenSSL (libcrypto)", "statically linked into dist/internal/mana-ssh.wasm",
     ["The OpenSSL Project Authors", "Apache License"]),
    ("nlohmann-json", "nlohmann/json", "compiled into dist/internal/mana-core.wasm and mana-ssh.wasm",
     ["Niels Lohmann", "Permission is hereby granted"]),
    ("emscripten", "Emscripten runtime (musl libc, libc++, libc++abi, compiler-rt, dlmalloc, glue)",
     "compiled into both .wasm modules and their .mjs glue",
     ["The Emscripten Authors", "musl", "LLVM Exceptions"]),
    ("xterm", "xterm.js (@xterm/headless, @xterm/addon-serialize)",
     "bundled into dist/mana-worker.js (the session worker's screen model)",
     ["The xterm.js authors", "Permission is hereby granted"]),
]
# npm packages bundled into dist/mana-worker.js -> the bundle file whose comments carry their
# copyright lines.
XTERM_PACKAGES = {"@xterm/headless": "lib-headless/xterm-headless.mjs",
                  "@xterm/addon-serialize": "lib/addon-serialize.mjs"}
MIT_TEXT = """Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
THE SOFTWARE."""
# Static libraries of the wasm build (wasm/CMakeLists.txt) -> component.
STATIC_LIBS = {"libssh2.a": "libssh2", "libcrypto.a": "openssl"}
# Upstream licence file inside each pinned orig tarball.
UPSTREAM_LICENSE = {"libssh2": "COPYING", "openssl": "LICENSE.txt"}
# Emscripten source paths whose code ends up in our output (DEP-5 Files patterns are matched
# against these).
EMSCRIPTEN_RUNTIME = ["src/library.js", "system/lib/libc/musl/src/string/memcpy.c",
                      "system/lib/libcxx/src/string.cpp", "system/lib/libcxxabi/src/cxa_guard.cpp",
                      "system/lib/compiler-rt/lib/builtins/udivdi3.c", "system/lib/dlmalloc.c"]


def heading(name):
    c = next(c for c in COMPONENTS if c[0] == name)
    return "=" * 78 + "\n%s\n" % c[1]


def read_lock():
    pins = {}
    with open(LOCK) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            name, version, file, sha = line.split()
            pins.setdefault(name, {"version": version, "files": {}})["files"][file] = sha
    return pins


def pinned_file(src_dir, name, pins, suffix):
    files = [f for f in pins[name]["files"] if f.endswith(suffix)]
    if len(files) != 1:
        sys.exit("third-party notices: %s: expected one *%s in the lock" % (name, suffix))
    path = os.path.join(src_dir, files[0])
    with open(path, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got != pins[name]["files"][files[0]]:
        sys.exit("third-party notices: sha256 mismatch for %s" % path)
    return path


def member_text(tar_path, want):
    """The text of the member whose path ends with `want` (one folder deep at most)."""
    with tarfile.open(tar_path) as t:
        for m in t.getmembers():
            parts = m.name.split("/")
            if m.isfile() and ("/".join(parts[-2:]) == want or "/".join(parts[1:]) == want):
                return t.extractfile(m).read().decode("utf-8", "replace")
    sys.exit("third-party notices: %s not found in %s" % (want, tar_path))


def dep5_paragraphs(text):
    paras = []
    for block in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip()
                fields[key] = value.strip()
        if fields:
            paras.append((fields, block.strip()))
    return paras


def glob_match(pattern, path):
    rx = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(rx, path) is not None


def emscripten_runtime_notice(text):
    """The DEP-5 paragraphs of Emscripten's copyright that cover the runtime paths."""
    paras = dep5_paragraphs(text)
    chosen, licenses = [], []
    for path in EMSCRIPTEN_RUNTIME:
        best = None  # DEP-5: the last matching Files paragraph wins
        for fields, block in paras:
            if "Files" in fields and any(glob_match(p, path) for p in fields["Files"].split()):
                best = (fields, block)
        if best and best[1] not in [b for _, b in chosen]:
            chosen.append(best)
            licenses += re.split(r"\s+(?:and|or)\s+|[()]", best[0].get("License", "").split("\n")[0])
    names = {l.strip() for l in licenses if l.strip()}
    out = [block for _, block in chosen]
    for fields, block in paras:
        if "Files" not in fields and fields.get("License", "").split("\n")[0].strip() in names:
            out.append(block)
    return "\n\n".join(out)


def installed_copyright(package):
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             capture_output=True, text=True)
    path = "/usr/share/doc/%s/copyright" % package
    if version.returncode != 0 or not os.path.exists(path):
        sys.exit("third-party notices: Debian package %s is not installed (make deps)" % package)
    with open(path, encoding="utf-8", errors="replace") as f:
        return version.stdout.strip(), f.read()


def xterm_notice():
    """Versions, licences and copyright lines of the xterm packages the worker bundles."""
    import json
    js = os.path.join(ROOT, "js-glue")
    with open(os.path.join(js, "package-lock.json")) as f:
        lock = json.load(f)["packages"]
    lines, holders = [], []
    for name, bundle in XTERM_PACKAGES.items():
        meta = lock.get("node_modules/" + name)
        if meta is None:
            sys.exit("third-party notices: %s is not in js-glue/package-lock.json" % name)
        with open(os.path.join(js, "node_modules", name, "package.json")) as f:
            installed = json.load(f)
        if installed.get("version") != meta["version"] or installed.get("license") != "MIT":
            sys.exit("third-party notices: js-glue/node_modules/%s is not the locked %s (MIT); "
                     "run make js-deps" % (name, meta["version"]))
        lines.append("  %s %s (%s), integrity %s" % (name, meta["version"], installed["license"],
                                                      meta.get("integrity", "?")))
        with open(os.path.join(js, "node_modules", name, bundle), encoding="utf-8") as f:
            for m in re.finditer(r"Copyright \(c\)[^\n*]*", f.read()):
                holder = m.group(0).strip()
                if holder not in holders:
                    holders.append(holder)
    return "npm packages (from js-glue/package-lock.json):\n%s\n\n%s\n\n%s\n" % (
        "\n".join(lines), "\n".join(holders), MIT_TEXT)


def generate(out):
    pins = read_lock()
    src_dir = subprocess.run(["bash", os.path.join(ROOT, "scripts", "wasm-deps.sh"), "--sources"],
                             capture_output=True, text=True)
    if src_dir.returncode != 0:
        sys.stderr.write(src_dir.stderr)
        sys.exit("third-party notices: scripts/wasm-deps.sh --sources failed")
    src_dir = src_dir.stdout.strip().splitlines()[-1]

    parts = [
        "THIRD-PARTY NOTICES for @mana/websocket\n\n"
        "@mana/websocket is licensed under the Apache License 2.0 (LICENSE). Its WebAssembly\n"
        "modules and its worker bundle contain code of the components below; their notices\n"
        "follow. Generated by scripts/third_party_notices.py from the pinned Debian source\n"
        "packages (scripts/wasm-deps.lock), the Debian packages the build used and the npm\n"
        "packages of js-glue/package-lock.json.\n\n"
        + "".join("  - %s: %s\n" % (c[1], c[2]) for c in COMPONENTS)
    ]
    for name in ("libssh2", "openssl"):
        version = pins[name]["version"]
        deb = member_text(pinned_file(src_dir, name, pins, ".debian.tar.xz"), "debian/copyright")
        upstream = member_text(pinned_file(src_dir, name, pins, ".orig.tar.gz"),
                               UPSTREAM_LICENSE[name])
        parts.append("%sDebian source package %s %s, %s\n\n--- %s (upstream)\n\n%s\n\n"
                     "--- debian/copyright\n\n%s\n" % (heading(name), name, version,
                                                      "with Debian's patch series applied",
                                                      UPSTREAM_LICENSE[name], upstream.strip(),
                                                      deb.strip()))
    version, text = installed_copyright("nlohmann-json3-dev")
    parts.append("%sDebian package nlohmann-json3-dev %s\n\n%s\n" % (
        heading("nlohmann-json"), version, text.strip()))
    version, text = installed_copyright("emscripten")
    parts.append("%sDebian package emscripten %s (the parts compiled into our output)\n\n%s\n" % (
        heading("emscripten"), version, emscripten_runtime_notice(text)))
    with open("/usr/share/emscripten/system/lib/libc/musl/COPYRIGHT") as f:
        parts.append("\n--- musl libc COPYRIGHT (as shipped by the emscripten package)\n\n%s\n"
                     % f.read().strip())
    parts.append("%s%s" % (heading("xterm"), xterm_notice()))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(parts))
    os.replace(tmp, out)


def linked_static_libs():
    """The static libraries wasm/CMakeLists.txt links into a module (e.g. libssh2.a)."""
    with open(os.path.join(ROOT, "wasm", "CMakeLists.txt")) as f:
        return sorted(set(re.findall(r"/lib/(lib[\w+-]+\.a)\b", f.read())))


def check(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    sections = text.split("=" * 78 + "\n")
    missing = ["a notice for %s (linked by wasm/CMakeLists.txt; add it to COMPONENTS and "
               "STATIC_LIBS in scripts/third_party_notices.py)" % lib
               for lib in linked_static_libs() if lib not in STATIC_LIBS]
    for name, title, _, markers in COMPONENTS:
        body = next((s for s in sections[1:] if s.startswith(title + "\n")), None)
        if body is None:
            missing.append("%s (no section)" % title)
            continue
        missing += ["%s (no '%s')" % (title, m) for m in markers if m not in body]
    if missing:
        print("third-party notices: %s lacks: %s" % (path, "; ".join(missing)), file=sys.stderr)
        return 1
    print("third-party notices: %s covers %d components" % (path, len(COMPONENTS)))
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--check":
        return check(argv[2])
    if len(argv) == 2 and not argv[1].startswith("-"):
        generate(argv[1])
        return check(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
