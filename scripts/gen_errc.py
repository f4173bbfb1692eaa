#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generates js-glue/src/generated/errc.ts from the core's error table (core/include/mana/core/errc.def).

The table's rows are X-macro calls, one per line:
  MANA_CLOSE_CODE(name, value, wire_name, resumable, errc_on_receipt)
  MANA_ERRC_CONDITION(name, value, message)
  MANA_ERRC_GROUP(name, condition, js_class_local, js_class_remote, summary)
  MANA_ERRC(name, close_code, group, fatal, framing, summary)
The C++ side expands them in error.hpp / error.cpp; this script writes what the JS side needs: the
Errc names, each Errc's group, each group's error classes and the close codes.

  gen_errc.py                 write the TS file
  gen_errc.py --check         exit 1 (with a diff) when the committed file differs from a fresh one
  gen_errc.py --def F --out G another table / output (the tests generate from a changed copy)
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEF = ROOT / "core" / "include" / "mana" / "core" / "errc.def"
DEFAULT_OUT = ROOT / "js-glue" / "src" / "generated" / "errc.ts"
PRINT_WIDTH = 100  # js-glue/.prettierrc.json

ROW_RE = re.compile(r"^(MANA_CLOSE_CODE|MANA_ERRC_CONDITION|MANA_ERRC_GROUP|MANA_ERRC)\((.*)\)\s*$")
ARITY = {"MANA_CLOSE_CODE": 5, "MANA_ERRC_CONDITION": 3, "MANA_ERRC_GROUP": 5, "MANA_ERRC": 6}
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TableError(Exception):
    pass


@dataclass
class CloseCode:
    name: str
    value: int
    wire_name: str
    resumable: bool
    errc_on_receipt: str


@dataclass
class Group:
    name: str
    condition: str
    js_local: str
    js_remote: str
    summary: str


@dataclass
class Errc:
    name: str
    close_code: str
    group: str
    fatal: bool
    framing: bool
    summary: str


@dataclass
class Table:
    close_codes: list[CloseCode]
    conditions: list[str]
    groups: list[Group]
    errcs: list[Errc]


def split_args(text: str, where: str) -> list[str]:
    """Splits a row's arguments at commas outside string literals; strings are unescaped."""
    args: list[str] = []
    cur = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            j = i + 1
            lit = ""
            while j < len(text) and text[j] != '"':
                if text[j] == "\\" and j + 1 < len(text):
                    j += 1
                lit += text[j]
                j += 1
            if j >= len(text):
                raise TableError(f"{where}: unterminated string literal")
            cur += '"' + lit  # marks a string argument
            i = j + 1
            continue
        if ch == ",":
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    args.append(cur.strip())
    return args


def ident(arg: str, where: str) -> str:
    if not IDENT_RE.match(arg):
        raise TableError(f"{where}: expected an identifier, got {arg!r}")
    return arg


def string(arg: str, where: str) -> str:
    if not arg.startswith('"'):
        raise TableError(f"{where}: expected a string literal, got {arg!r}")
    return arg[1:]


def boolean(arg: str, where: str) -> bool:
    if arg not in ("true", "false"):
        raise TableError(f"{where}: expected true or false, got {arg!r}")
    return arg == "true"


def parse(def_path: Path) -> Table:
    table = Table([], [], [], [])
    for lineno, line in enumerate(def_path.read_text(encoding="utf-8").splitlines(), 1):
        m = ROW_RE.match(line)
        if not m:
            continue
        kind, where = m.group(1), f"{def_path}:{lineno}"
        a = split_args(m.group(2), where)
        if len(a) != ARITY[kind]:
            raise TableError(f"{where}: {kind} takes {ARITY[kind]} arguments, got {len(a)}")
        if kind == "MANA_CLOSE_CODE":
            if not a[1].isdigit():
                raise TableError(f"{where}: expected a close code, got {a[1]!r}")
            table.close_codes.append(
                CloseCode(ident(a[0], where), int(a[1]), string(a[2], where),
                          boolean(a[3], where), ident(a[4], where)))
        elif kind == "MANA_ERRC_CONDITION":
            table.conditions.append(ident(a[0], where))
        elif kind == "MANA_ERRC_GROUP":
            table.groups.append(Group(ident(a[0], where), ident(a[1], where), ident(a[2], where),
                                      ident(a[3], where), string(a[4], where)))
        else:
            table.errcs.append(Errc(ident(a[0], where), ident(a[1], where), ident(a[2], where),
                                    boolean(a[3], where), boolean(a[4], where),
                                    string(a[5], where)))
    check_references(table, def_path)
    return table


def check_references(t: Table, def_path: Path) -> None:
    """The checks the C++ compiler makes when it expands the rows, so a bad row fails here too."""
    def unique(names: list[str], what: str) -> set[str]:
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TableError(f"{def_path}: duplicate {what}: {', '.join(dup)}")
        return set(names)

    if not (t.close_codes and t.groups and t.errcs):
        raise TableError(f"{def_path}: no close-code, group or Errc rows")
    codes = unique([c.name for c in t.close_codes], "close code names")
    unique([str(c.value) for c in t.close_codes], "close code values")
    conditions = unique(t.conditions, "conditions")
    groups = unique([g.name for g in t.groups], "groups")
    errcs = unique([e.name for e in t.errcs], "Errc names")
    for c in t.close_codes:
        if c.errc_on_receipt not in errcs:
            raise TableError(f"{def_path}: close code {c.name}: unknown Errc {c.errc_on_receipt}")
    for g in t.groups:
        if g.condition != "none" and g.condition not in conditions:
            raise TableError(f"{def_path}: group {g.name}: unknown condition {g.condition}")
    for e in t.errcs:
        if e.close_code not in codes:
            raise TableError(f"{def_path}: Errc {e.name}: unknown close code {e.close_code}")
        if e.group not in groups:
            raise TableError(f"{def_path}: Errc {e.name}: unknown group {e.group}")


def ts_union(name: str, members: list[str], doc: str) -> list[str]:
    quoted = [f"'{m}'" for m in members]
    one_line = f"export type {name} = {' | '.join(quoted)};"
    out = [f"/** {doc} */"]
    if len(one_line) <= PRINT_WIDTH:
        return out + [one_line]
    return out + [f"export type {name} ="] + [f"  | {q}" for q in quoted[:-1]] + [
        f"  | {quoted[-1]};"
    ]


def doc_comment(text: str, indent: str) -> list[str]:
    text = text.replace("*/", "*\\/")
    one = f"{indent}/** {text} */"
    if len(one) <= PRINT_WIDTH:
        return [one]
    width = PRINT_WIDTH - len(indent) - 3
    return [f"{indent}/**"] + [f"{indent} * {line}" for line in textwrap.wrap(text, width)] + [
        f"{indent} */"
    ]


def ts_object(doc: str, head: str, entries: list[tuple[str | None, str]],
              close: str = "};") -> list[str]:
    """An exported object literal, each entry under its doc comment (when it has one)."""
    out = ["", f"/** {doc} */", head]
    for comment, entry in entries:
        if comment is not None:
            out += doc_comment(comment, "  ")
        out.append(f"  {entry}")
    return out + [close]


def render(t: Table, def_rel: str) -> str:
    classes: list[str] = []
    for g in t.groups:
        for c in (g.js_local, g.js_remote):
            if c not in classes:
                classes.append(c)
    lines = [
        "// SPDX-License-Identifier: Apache-2.0",
        f"// Generated by scripts/gen_errc.py from {def_rel}: do not edit. Change the",
        "// table and run `make gen-errc`; the ctest errc_ts_fresh fails while this file is stale.",
        "",
    ]
    lines += ts_union("ErrcName", [e.name for e in t.errcs],
                      "A library error name: the core's `Errc` (`to_string(Errc)`).")
    lines.append("")
    lines += ts_union("ErrcGroup", [g.name for g in t.groups],
                      "What an error means to the application (docs/PROTOCOL.md §11, error groups).")
    lines.append("")
    lines += ts_union("GroupErrorClassName", classes,
                      "The ManaError subclasses the groups map to (js-glue/src/errors.ts).")
    lines += [
        "",
        "/** The error classes of a group: `local` when this side closed, `remote` when the peer did. */",
        "export interface GroupErrorClasses {",
        "  readonly local: GroupErrorClassName;",
        "  readonly remote: GroupErrorClassName;",
        "}",
    ]
    lines += ts_object(
        "The group of each library error.",
        "export const errcGroup: Readonly<Record<ErrcName, ErrcGroup>> = {",
        [(e.summary, f"{e.name}: '{e.group}',") for e in t.errcs])
    lines += ts_object(
        "The error classes of each group, and what the application should do about its errors.",
        "export const groupErrorClasses: Readonly<Record<ErrcGroup, GroupErrorClasses>> = {",
        [(g.summary, f"{g.name}: {{ local: '{g.js_local}', remote: '{g.js_remote}' }},")
         for g in t.groups])
    lines += ts_object(
        "WebSocket close codes by the core's `CloseCode` names (docs/PROTOCOL.md §11).",
        "export const closeCode = {",
        [(None, f"{c.name}: {c.value},") for c in t.close_codes], close="} as const;")
    return "\n".join(lines + [""])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--def", dest="def_path", type=Path, default=DEFAULT_DEF)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true",
                    help="compare with --out instead of writing it; exit 1 when they differ")
    args = ap.parse_args(argv)
    try:
        table = parse(args.def_path)
    except (OSError, TableError) as e:
        print(f"gen_errc: {e}", file=sys.stderr)
        return 2
    # The header names the canonical table, wherever this run read it from, so that a
    # generation from a copy (tests) differs from the committed file only in its rows.
    text = render(table, DEFAULT_DEF.relative_to(ROOT).as_posix())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current == text:
            print(f"gen_errc: {args.out} is up to date")
            return 0
        diff = difflib.unified_diff(current.splitlines(), text.splitlines(),
                                    f"{args.out} (committed)", "fresh generation", lineterm="")
        print("\n".join(list(diff)[:80]))
        print(f"gen_errc: {args.out} is stale: run `make gen-errc` (python3 scripts/gen_errc.py) "
              "and commit it", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"gen_errc: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
