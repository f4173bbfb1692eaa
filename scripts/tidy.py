#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""clang-tidy over the first-party translation units of a compile database, with a result cache.

`make tidy` runs this. A file's findings are printed only when it has some; the exit status is 1
when any file has findings.

Cache: a translation unit that passed is recorded under
${MANA_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/mana-websocket}/tidy/<key>, where <key> is the
SHA-256 of everything that can change clang-tidy's answer:
  - clang-tidy's --version and the .clang-tidy file,
  - the compile command (with the source tree's path replaced, so clones in any folder share it),
  - the translation unit preprocessed with comments kept (-E -P -CC): the file and every header it
    includes, NOLINT comments included.
Only passes are cached; a file with findings runs again every time. MANA_TIDY_CACHE=0 turns the
cache off. A cold cache gives the same answers, only slower.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time


def cache_dir():
    base = os.environ.get("MANA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "mana-websocket")
    return os.path.join(base, "tidy")


def command_args(entry):
    if "arguments" in entry:
        return list(entry["arguments"])
    return shlex.split(entry["command"])


def preprocess_args(args):
    """The compile command turned into one that writes the preprocessed unit to stdout."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        if a == "-c" or a.startswith("-o"):
            continue
        out.append(a)
    return out + ["-E", "-P", "-CC", "-o", "-"]


def unit_key(entry, root, salt):
    args = command_args(entry)
    pre = subprocess.run(preprocess_args(args), cwd=entry["directory"], capture_output=True)
    if pre.returncode != 0:
        return None  # let clang-tidy report the problem
    h = hashlib.sha256()
    h.update(salt)
    h.update(" ".join(args).replace(root, "<root>").encode())
    h.update(b"\0")
    h.update(os.path.relpath(entry["file"], root).encode())
    h.update(b"\0")
    h.update(pre.stdout.replace(root.encode(), b"<root>"))
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True, help="build folder with compile_commands.json")
    ap.add_argument("--root", required=True, help="source tree")
    ap.add_argument("--include", required=True, help="regex of the files to check (relative)")
    ap.add_argument("--tidy", default="clang-tidy-14")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()

    root = os.path.realpath(a.root)
    with open(os.path.join(a.build, "compile_commands.json")) as f:
        db = json.load(f)
    pattern = re.compile(a.include)
    units, seen = [], set()
    for e in db:
        path = os.path.realpath(os.path.join(e["directory"], e["file"]))
        rel = os.path.relpath(path, root)
        if pattern.match(rel) and path not in seen:
            seen.add(path)
            units.append(dict(e, file=path))
    units.sort(key=lambda e: e["file"])
    if not units:
        print("tidy: no sources")
        return 0

    use_cache = os.environ.get("MANA_TIDY_CACHE", "1") != "0"
    version = subprocess.run([a.tidy, "--version"], capture_output=True, check=True).stdout
    with open(os.path.join(root, ".clang-tidy"), "rb") as f:
        salt = version + b"\0" + f.read() + b"\0"
    cdir = cache_dir()
    if use_cache:
        os.makedirs(cdir, exist_ok=True)

    def check(e):
        key = unit_key(e, root, salt) if use_cache else None
        if key and os.path.exists(os.path.join(cdir, key)):
            return e["file"], True, ""
        t0 = time.monotonic()
        r = subprocess.run([a.tidy, "-p", a.build, "--quiet", e["file"]],
                           capture_output=True, text=True)
        seconds[e["file"]] = time.monotonic() - t0
        out = "\n".join(l for l in (r.stdout + r.stderr).splitlines()
                        if "warnings generated" not in l)
        ok = r.returncode == 0
        if ok and key:
            open(os.path.join(cdir, key), "w").close()
        return e["file"], False, "" if ok else out

    failed, cached, seconds = [], 0, {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        for path, hit, out in pool.map(check, units):
            cached += hit
            if out:
                failed.append(path)
                print(out, file=sys.stderr)
    print("tidy: %d files, %d from the cache%s" % (
        len(units), cached, "" if use_cache else " (cache off)"))
    if seconds:
        slow = sorted(seconds.items(), key=lambda kv: -kv[1])[:5]
        print("tidy: %.0f s of clang-tidy; slowest: %s" % (sum(seconds.values()), ", ".join(
            "%s %.0f s" % (os.path.relpath(f, root), t) for f, t in slow)))
    if failed:
        print("tidy: findings in %d files" % len(failed), file=sys.stderr)
        return 1
    print("tidy: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
