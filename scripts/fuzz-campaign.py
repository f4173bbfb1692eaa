#!/usr/bin/env python3
"""Fuzzing campaign driver behind `make fuzz` and `make fuzz-coverage`.

run       Runs every libFuzzer target (build/fuzz/bin/<target>) for --seconds each on its
          accumulated corpus (build/fuzz-corpus/<target>/) plus the committed seeds
          (tests/fuzz/corpus/<target>/). Per target it records the CPU time of the fuzzer
          process (user + sys from wait4's rusage), the executions (-print_final_stats),
          the corpus size and the crash/leak/timeout/oom inputs written this run, prints a
          table and writes build/fuzz-report.json. Exit status 1 when any target failed.

coverage  Replays each target's corpus (accumulated + seeds) through <target>_replay built
          with clang source-based coverage (preset fuzz-coverage), merges the profiles with
          llvm-profdata-14 and reads line coverage per source file with llvm-cov-14. Prints
          the line coverage of the decoders (core/src/messages.cpp, message_fields.cpp,
          wire_profile*.cpp, base64.cpp) and of every other first-party file each target reaches,
          merged over all targets too, and writes build/fuzz-coverage.json.

campaign  Keeps fuzzing in the background until a CPU budget is spent: --jobs fuzzers at a time
          (SCHED_IDLE and nice 19 unless --no-idle, so they only take CPU nobody else wants),
          slices of --slice seconds, the target with the least CPU so far next, except that
          targets given with --min TARGET=HOURS come first until they reached their share
          (--normal TARGET runs one at normal priority, for a share due by a deadline). Stops
          when the ledger (below) holds --cpu-hours in total and every --min is met, or when
          build/fuzz-campaign.stop exists (checked between slices). A crash stops that target
          until its binary is rebuilt (the fix), then it runs again.

summary   Per target, from the ledger: CPU hours, executions, the last coverage (libFuzzer's
          `cov` edges and `ft` features), corpus size and crashes. --markdown for docs.

minimize  Merges each target's accumulated corpus into its committed seeds with libFuzzer's
          -merge=1: the inputs that add coverage to the seeds (tests/fuzz/corpus/<t>/ including
          its campaign/ folder) are written to tests/fuzz/corpus/<t>/campaign/, so the corpus
          replayed by `make test` (ctest <t>_corpus) carries what the campaign found.

Every fuzzer run (run and campaign) appends one JSON line to build/fuzz-ledger.jsonl.
Standard library only. Paths are relative to the repository root (the working directory).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DECODERS = ["core/src/messages.cpp", "core/src/message_fields.cpp", "core/src/wire_profile.cpp",
            "core/src/wire_profile_mana_v1.cpp", "core/src/wire_profile_json_base64_v1.cpp",
            "core/src/wire_profile_lenpfx_v1.cpp", "core/src/base64.cpp"]
ARTIFACT_PREFIXES = ("crash-", "leak-", "timeout-", "oom-", "slow-unit-")


def count_files(path: Path) -> int:
    if not path.is_dir():
        return 0
    return sum(1 for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def artifacts(path: Path) -> set:
    if not path.is_dir():
        return set()
    return {p.name for p in path.iterdir() if p.name.startswith(ARTIFACT_PREFIXES)}


def idle_priority() -> None:
    """In the child: run only on CPU time nobody else wants."""
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    os.nice(19)


def fuzzer_env(target: str) -> dict:
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    # Known leaks of third-party code a target reaches (tests/fuzz/<target>.lsan.supp).
    supp = Path("tests/fuzz") / f"{target}.lsan.supp"
    if supp.is_file():
        # Slow unwinding: Debian's libcrypto has no frame pointers, so the fast unwinder stops
        # there and the suppressed libssh2 frames would be missing from the stacks.
        env["LSAN_OPTIONS"] = f"fast_unwind_on_malloc=0:suppressions={supp.resolve()}"
    return env


LEDGER_LOCK = threading.Lock()


def append_ledger(build: str, target: str, result: dict, kind: str) -> None:
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "target": target,
             "kind": kind}
    entry.update({k: result[k] for k in ("cpu_s", "wall_s", "runs", "cov", "ft", "corpus_size",
                                         "crashes", "slow_units", "exit_code")})
    with LEDGER_LOCK, open(Path(build) / "fuzz-ledger.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def run_target(args, target: str, idle: bool = False, log_suffix: str = "") -> dict:
    binary = Path(args.fuzz_dir) / "bin" / target
    corpus = Path(args.build) / "fuzz-corpus" / target
    art = Path(args.build) / "fuzz-artifacts" / target
    logs = Path(args.build) / "fuzz-logs"
    seeds = Path("tests/fuzz/corpus") / target
    for d in (corpus, art, logs):
        d.mkdir(parents=True, exist_ok=True)
    before = artifacts(art)
    cmd = [
        str(binary),
        f"-max_total_time={args.seconds}",
        "-timeout=25",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={art}/",
        str(corpus),
    ]
    if seeds.is_dir():
        cmd.append(str(seeds))
    log_path = logs / f"{target}{log_suffix}.log"
    print(f"==> fuzz {target} for {args.seconds}s (log {log_path})", flush=True)
    env = fuzzer_env(target)
    start = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=idle_priority if idle else None)
        # Hard bound: the run plus generous slack for the final merge and stats.
        deadline = start + args.seconds + 120
        status = None
        usage = None
        while status is None:
            pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                status, usage = st, ru
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, st, ru = os.wait4(proc.pid, 0)
                status, usage = st, ru
                break
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    text = log_path.read_text(errors="replace")
    stats = dict(re.findall(r"^stat::(\w+):\s*(\d+)", text, re.M))
    cov = re.findall(r"\bcov: (\d+) ft: (\d+)", text)
    new_artifacts = sorted(artifacts(art) - before)
    result = {
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "wall_s": round(wall, 2),
        "runs": int(stats.get("number_of_executed_units", 0)),
        "cov": int(cov[-1][0]) if cov else 0,
        "ft": int(cov[-1][1]) if cov else 0,
        "corpus_size": count_files(corpus),
        "seeds": count_files(seeds),
        # A slow-unit-* input is libFuzzer's note of a slow run (wall time: under SCHED_IDLE a
        # starved fuzzer writes them), not a failure.
        "crashes": sum(1 for a in new_artifacts if not a.startswith("slow-unit-")),
        "slow_units": sum(1 for a in new_artifacts if a.startswith("slow-unit-")),
        "artifacts": [str(art / a) for a in new_artifacts],
        "exit_code": proc.returncode,
        "peak_rss_mb": int(stats.get("peak_rss_mb", 0)),
    }
    if proc.returncode != 0 or new_artifacts:
        print("\n".join(text.splitlines()[-40:]), file=sys.stderr)
    append_ledger(args.build, target, result, "campaign" if idle else "run")
    return result


def cmd_run(args) -> int:
    report_path = Path(args.build) / "fuzz-report.json"
    report = {}
    failed = []
    for t in args.targets:
        r = run_target(args, t)
        report[t] = r
        if r["exit_code"] != 0 or r["crashes"]:
            failed.append(t)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'target':28} {'cpu_s':>8} {'runs':>11} {'execs/s':>8} {'corpus':>7} {'crashes':>7}")
    for t, r in report.items():
        rate = r["runs"] / r["cpu_s"] if r["cpu_s"] else 0
        print(f"{t:28} {r['cpu_s']:8.1f} {r['runs']:11d} {rate:8.0f} {r['corpus_size']:7d} "
              f"{r['crashes']:7d}")
    print(f"report: {report_path}")
    if failed:
        print(f"make fuzz: FAILED: {' '.join(failed)} (inputs in {args.build}/fuzz-artifacts/)",
              file=sys.stderr)
        return 1
    print("make fuzz: no crashes")
    return 0


def read_ledger(build: str) -> list:
    path = Path(build) / "fuzz-ledger.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def cpu_by_target(build: str) -> dict:
    out = {}
    for e in read_ledger(build):
        out[e["target"]] = out.get(e["target"], 0.0) + e["cpu_s"]
    return out


def cmd_campaign(args) -> int:
    mins = {}
    for m in args.min:
        name, _, hours = m.partition("=")
        if name not in args.targets or not hours:
            print(f"fuzz campaign: --min {m}: want TARGET=HOURS for a listed target",
                  file=sys.stderr)
            return 2
        mins[name] = float(hours) * 3600
    stop_file = Path(args.build) / "fuzz-campaign.stop"
    stop_file.unlink(missing_ok=True)
    budget = args.cpu_hours * 3600
    lock = threading.Lock()
    running = set()
    crashed = {}  # target -> its binary's mtime when it crashed: retried once rebuilt

    def binary_mtime(t: str) -> float:
        return (Path(args.fuzz_dir) / "bin" / t).stat().st_mtime
    slices = [0]

    def done(cpu: dict) -> bool:
        return (sum(cpu.values()) >= budget and all(cpu.get(t, 0) >= v for t, v in mins.items()))

    def pick():
        cpu = cpu_by_target(args.build)
        if stop_file.exists() or done(cpu):
            return None
        free = [t for t in args.targets if t not in running
                and crashed.get(t) != binary_mtime(t)]
        if not free:
            return None
        behind = [t for t in free if cpu.get(t, 0) < mins.get(t, 0)]
        pool = behind or free
        # A target behind its --min share weighs its CPU against that share.
        return min(pool, key=lambda t: (cpu.get(t, 0) / mins[t]) if t in mins and behind
                   else cpu.get(t, 0))

    def worker(n: int) -> None:
        while True:
            with lock:
                target = pick()
                if target is None:
                    return
                running.add(target)
                slices[0] += 1
            idle = not args.no_idle and target not in args.normal
            r = run_target(args, target, idle=idle, log_suffix=f".{n}")
            with lock:
                running.discard(target)
                if r["exit_code"] != 0 or r["crashes"]:
                    crashed[target] = binary_mtime(target)
                else:
                    crashed.pop(target, None)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"fuzz campaign: {slices[0]} slices; stopped "
          f"({'stop file' if stop_file.exists() else 'budget spent or nothing left'})")
    print_summary(args.build, markdown=False)
    if crashed:
        print(f"fuzz campaign: crashes in {' '.join(sorted(crashed))} "
              f"(inputs in {args.build}/fuzz-artifacts/)", file=sys.stderr)
        return 1
    return 0


def print_summary(build: str, markdown: bool) -> None:
    rows = {}
    for e in read_ledger(build):
        r = rows.setdefault(e["target"], {"cpu_s": 0.0, "runs": 0, "slices": 0, "crashes": 0})
        r["cpu_s"] += e["cpu_s"]
        r["runs"] += e["runs"]
        r["slices"] += 1
        r["crashes"] += e["crashes"]
        r["cov"], r["ft"], r["corpus"] = e["cov"], e["ft"], e["corpus_size"]
    total = sum(r["cpu_s"] for r in rows.values())
    head = ["target", "CPU h", "executions", "exec/CPU s", "cov (edges)", "ft", "corpus",
            "crashes"]
    lines = []
    for t, r in sorted(rows.items()):
        rate = r["runs"] / r["cpu_s"] if r["cpu_s"] else 0
        lines.append([t, f"{r['cpu_s'] / 3600:.2f}", f"{r['runs']:,}".replace(",", " "),
                      f"{rate:,.0f}".replace(",", " "), str(r["cov"]), str(r["ft"]),
                      str(r["corpus"]), str(r["crashes"])])
    lines.append(["total", f"{total / 3600:.2f}",
                  f"{sum(r['runs'] for r in rows.values()):,}".replace(",", " "), "", "", "", "",
                  str(sum(r["crashes"] for r in rows.values()))])
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|---|" + "---:|" * (len(head) - 1))
        for row in lines:
            print("| " + " | ".join(f"`{c}`" if i == 0 and c != "total" else c
                                    for i, c in enumerate(row)) + " |")
    else:
        widths = [max(len(x[i]) for x in [head] + lines) for i in range(len(head))]
        for row in [head] + lines:
            print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                            for i, c in enumerate(row)))


def cmd_summary(args) -> int:
    print_summary(args.build, args.markdown)
    return 0


def cmd_minimize(args) -> int:
    for t in args.targets:
        binary = Path(args.fuzz_dir) / "bin" / t
        seeds = Path("tests/fuzz/corpus") / t
        found = Path(args.build) / "fuzz-corpus" / t
        out = seeds / "campaign"
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp) / "merged"
            base.mkdir()
            before = set()
            for f in sorted(seeds.rglob("*")) if seeds.is_dir() else []:
                if f.is_file() and not f.name.startswith("."):
                    name = f"{f.parent.name}-{f.name}" if f.parent != seeds else f.name
                    shutil.copyfile(f, base / name)
                    before.add(name)
            log = Path(tmp) / "merge.log"
            with open(log, "wb") as lf:
                rc = subprocess.run([str(binary), "-merge=1", "-timeout=25", "-rss_limit_mb=2048",
                                     str(base), str(found)], stdout=lf, stderr=subprocess.STDOUT,
                                    env=fuzzer_env(t), check=False).returncode
            if rc != 0:
                print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
                print(f"fuzz minimize: {t}: merge failed ({rc})", file=sys.stderr)
                return 1
            added = sorted(set(p.name for p in base.iterdir()) - before)
            out.mkdir(parents=True, exist_ok=True)
            for name in added:
                shutil.copyfile(base / name, out / name)
        size = sum(p.stat().st_size for p in out.iterdir()) if out.is_dir() else 0
        print(f"{t:28} accumulated {count_files(found):6d}  added {len(added):4d}  "
              f"campaign/ {count_files(out):4d} files {size / 1024:8.1f} KiB")
    return 0


def first_party(name: str, root: str) -> str:
    rel = os.path.relpath(name, root)
    return rel if rel.startswith(("core/", "gateway/", "ssh-engine/")) else ""


def cmd_coverage(args) -> int:
    cov_dir = Path(args.cov_dir)
    prof_dir = cov_dir / "profiles"
    prof_dir.mkdir(parents=True, exist_ok=True)
    root = os.getcwd()
    result = {"targets": {}, "merged": {}}
    profdatas = []
    binaries = []
    for t in args.targets:
        binary = cov_dir / "bin" / f"{t}_replay"
        if not binary.exists():
            print(f"fuzz-coverage: {binary} missing", file=sys.stderr)
            return 1
        for old in prof_dir.glob(f"{t}-*.profraw"):
            old.unlink()
        inputs = [p for p in (Path(args.build) / "fuzz-corpus" / t, Path("tests/fuzz/corpus") / t)
                  if p.is_dir()]
        env = dict(os.environ, LLVM_PROFILE_FILE=str(prof_dir / f"{t}-%p.profraw"))
        subprocess.run([str(binary)] + [str(p) for p in inputs], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=1800)
        profdata = prof_dir / f"{t}.profdata"
        subprocess.run(["llvm-profdata-14", "merge", "-sparse", "-o", str(profdata)]
                       + [str(p) for p in prof_dir.glob(f"{t}-*.profraw")], check=True)
        exported = subprocess.run(
            ["llvm-cov-14", "export", "-summary-only", f"-instr-profile={profdata}", str(binary)],
            check=True, capture_output=True, text=True).stdout
        files = {}
        for f in json.loads(exported)["data"][0]["files"]:
            rel = first_party(f["filename"], root)
            if not rel:
                continue
            lines = f["summary"]["lines"]
            if lines["count"] == 0 or (lines["covered"] == 0 and rel not in DECODERS):
                continue
            files[rel] = {"covered": lines["covered"], "count": lines["count"],
                          "percent": round(lines["percent"], 1)}
        result["targets"][t] = {"inputs": sum(count_files(p) for p in inputs), "files": files}
        profdatas.append(profdata)
        binaries.append(binary)
    # Merged over all targets: one profile, every binary as an object file.
    merged = prof_dir / "all.profdata"
    subprocess.run(["llvm-profdata-14", "merge", "-sparse", "-o", str(merged)]
                   + [str(p) for p in profdatas], check=True)
    cmd = ["llvm-cov-14", "export", "-summary-only", f"-instr-profile={merged}", str(binaries[0])]
    for b in binaries[1:]:
        cmd += ["-object", str(b)]
    exported = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for f in json.loads(exported)["data"][0]["files"]:
        rel = first_party(f["filename"], root)
        if rel and rel.startswith(("core/src/", "gateway/src/", "ssh-engine/src/")):
            lines = f["summary"]["lines"]
            result["merged"][rel] = {"covered": lines["covered"], "count": lines["count"],
                                     "percent": round(lines["percent"], 1)}
    out = Path(args.build) / "fuzz-coverage.json"
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\nline coverage of the decoders per target ({', '.join(DECODERS)})")
    width = {d: max(18, len(Path(d).name)) for d in DECODERS}
    print(f"{'target':28} {'inputs':>7} " +
          " ".join(f"{Path(d).name:>{width[d]}}" for d in DECODERS))
    for t, r in result["targets"].items():
        cells = []
        for d in DECODERS:
            c = r["files"].get(d)
            cell = f"{c['percent']:5.1f}% {c['covered']:5d}/{c['count']:<5d}" if c else "-"
            cells.append(f"{cell:>{width[d]}}")
        print(f"{t:28} {r['inputs']:7d} " + " ".join(cells))
    print("\nother first-party files per target (line coverage)")
    for t, r in result["targets"].items():
        rest = [f"{Path(n).name} {c['percent']:.1f}%" for n, c in sorted(r["files"].items())
                if n not in DECODERS]
        print(f"{t:28} " + (", ".join(rest) if rest else "-"))
    print("\nmerged over all targets")
    for n, c in sorted(result["merged"].items()):
        print(f"  {n:34} {c['percent']:5.1f}%  {c['covered']:5d}/{c['count']}")
    print(f"report: {out}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--seconds", type=int, default=60)
    r.add_argument("--build", default="build")
    r.add_argument("--fuzz-dir", default="build/fuzz")
    r.add_argument("targets", nargs="+")
    g = sub.add_parser("campaign")
    g.add_argument("--cpu-hours", type=float, required=True)
    g.add_argument("--min", action="append", default=[], metavar="TARGET=HOURS")
    g.add_argument("--jobs", type=int, default=2)
    g.add_argument("--slice", dest="seconds", type=int, default=600)
    g.add_argument("--no-idle", action="store_true")
    g.add_argument("--normal", action="append", default=[], metavar="TARGET",
                   help="run this target at normal priority (a quota to meet by a deadline)")
    g.add_argument("--build", default="build")
    g.add_argument("--fuzz-dir", default="build/fuzz")
    g.add_argument("targets", nargs="+")
    s = sub.add_parser("summary")
    s.add_argument("--build", default="build")
    s.add_argument("--markdown", action="store_true")
    m = sub.add_parser("minimize")
    m.add_argument("--build", default="build")
    m.add_argument("--fuzz-dir", default="build/fuzz")
    m.add_argument("targets", nargs="+")
    c = sub.add_parser("coverage")
    c.add_argument("--build", default="build")
    c.add_argument("--cov-dir", default="build/fuzz-coverage")
    c.add_argument("targets", nargs="+")
    args = ap.parse_args()
    return {"run": cmd_run, "campaign": cmd_campaign, "summary": cmd_summary,
            "minimize": cmd_minimize, "coverage": cmd_coverage}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
