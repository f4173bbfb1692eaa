// SPDX-License-Identifier: Apache-2.0
// The core's error table (core/include/mana/core/errc.def) drives the JS error classes:
//   1. docs/PROTOCOL.md §11 (the error groups and the Errc table) agrees with errorFromClose() of
//      the built package for every Errc; tests/unit/close_codes_test.cpp checks the same section
//      against the core, and the ctest errc_ts_fresh that src/generated/errc.ts is generated from
//      the committed table.
//   2. Changing one row of the table changes C++ and JS behaviour together: a copy of the table
//      with one row changed is compiled into a small C++ probe (g++, with core/src/error.cpp) and
//      generated into TS (scripts/gen_errc.py, bundled with src/errors.ts by esbuild); both then
//      classify that error the new way, and agree with each other on every row.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = join(root, 'build', 'js', 'package', 'dist');
const lib = await import(join(dist, 'index.js'));
const { errorFromClose } = await import(join(dist, 'errors.js'));
const generated = await import(join(dist, 'generated', 'errc.js'));

const work = mkdtempSync(join(tmpdir(), 'mana-errc-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Section 11 of docs/PROTOCOL.md. */
function closeCodesSection() {
  const doc = readFileSync(join(root, 'docs', 'PROTOCOL.md'), 'utf8');
  const start = doc.indexOf('## 11. Close codes');
  assert.ok(start >= 0, 'PROTOCOL.md has section 11');
  const end = doc.indexOf('\n## ', start + 4);
  return doc.slice(start, end < 0 ? undefined : end);
}

/** The error-group table: group -> { local, remote } class names ("A when ..., B when ..."). */
function docGroups(section) {
  const groups = new Map();
  for (const m of section.matchAll(/^\| `(\w+)` \| (?:`\w+`|—) \| ([^|]*) \|/gm)) {
    const classes = [...m[2].matchAll(/`(\w+)`/g)].map((c) => c[1]);
    assert.ok(classes.length >= 1, `group ${m[1]} names its class`);
    groups.set(m[1], { local: classes[0], remote: classes[1] ?? classes[0] });
  }
  return groups;
}

/** The Errc table: Errc name -> { code, group }. */
function docErrcRows(section) {
  const rows = new Map();
  for (const m of section.matchAll(/^\| ((?:`\w+`(?:, )?)+) \| (\d{4}) \| `(\w+)` \|$/gm)) {
    for (const n of m[1].matchAll(/`(\w+)`/g)) {
      assert.ok(!rows.has(n[1]), `${n[1]} is listed once`);
      rows.set(n[1], { code: Number(m[2]), group: m[3] });
    }
  }
  return rows;
}

const section = closeCodesSection();
const groups = docGroups(section);
const errcRows = docErrcRows(section);

function closeWith(fromClose, error, code, origin) {
  return fromClose({ error, code, origin, reason: '', resumable: false });
}

test('PROTOCOL.md §11 and errorFromClose() agree on every Errc and group', () => {
  assert.ok(groups.size >= 8, `groups: ${[...groups.keys()].join(', ')}`);
  assert.deepEqual(
    [...errcRows.keys()].sort(),
    Object.keys(generated.errcGroup).sort(),
    'the document lists exactly the Errc values of the table',
  );
  assert.deepEqual(
    [...groups.keys()].sort(),
    Object.keys(generated.groupErrorClasses).sort(),
    'the document lists exactly the groups of the table',
  );
  for (const [name, { code, group }] of errcRows) {
    const classes = groups.get(group);
    assert.ok(classes, `${name}: group ${group} is in the group table`);
    for (const origin of ['local', 'remote']) {
      const e = closeWith(errorFromClose, name, code, origin);
      const want = classes[origin];
      assert.ok(lib[want], `${want} is exported`);
      assert.ok(e instanceof lib[want], `${name} (${origin}) -> ${want}, got ${e.name}`);
      assert.equal(e.name, want);
      assert.equal(e.origin, origin);
      assert.equal(e.wsCode, code);
      assert.equal(e.appCode, code >= 4000 ? code : undefined);
    }
  }
  // The two rows whose group is a documented choice.
  assert.equal(errcRows.get('server_overload').group, 'transport');
  assert.equal(errcRows.get('internal').group, 'protocol');
  // Unknown names stay plain ManaErrors (not an inherited Object property either).
  for (const name of ['no_such_errc', 'constructor', 'toString']) {
    const e = closeWith(errorFromClose, name, 4015, 'remote');
    assert.equal(e.constructor, lib.ManaError, name);
  }
});

test('the close codes the JS side uses are the ones PROTOCOL.md §11 lists', () => {
  const documented = new Set([...section.matchAll(/^\| (\d{4}) \|/gm)].map((m) => Number(m[1])));
  assert.ok(documented.size >= 20);
  for (const [name, code] of Object.entries(generated.closeCode)) {
    assert.ok(documented.has(code), `${name} = ${code} is documented`);
  }
  assert.equal(generated.closeCode.cancelled, 4000);
  assert.equal(generated.closeCode.resume_failed, 4011);
});

/**
 * Builds both sides from the table text `def` in `dir`: the C++ probe (error.cpp + error.hpp
 * compiled against that table) and errors.ts bundled with the TS generated from it.
 * Returns { cpp: Map(Errc -> { code, group, condition }), js: errors module }.
 */
async function buildVariant(dir, def) {
  const inc = join(dir, 'include', 'mana', 'core');
  mkdirSync(inc, { recursive: true });
  mkdirSync(join(dir, 'src'), { recursive: true });
  mkdirSync(join(dir, 'js', 'generated'), { recursive: true });
  copyFileSync(join(root, 'core', 'include', 'mana', 'core', 'error.hpp'), join(inc, 'error.hpp'));
  writeFileSync(join(inc, 'errc.def'), def);
  copyFileSync(join(root, 'core', 'src', 'error.cpp'), join(dir, 'src', 'error.cpp'));
  writeFileSync(
    join(dir, 'probe.cpp'),
    `#include <cstdio>
#include <string>
#include <system_error>

#include "mana/core/error.hpp"

int main() {
  using namespace mana::core;
  for (int i = 0; to_string(static_cast<Errc>(i)) != "unknown"; ++i) {
    const auto e = static_cast<Errc>(i);
    const std::error_condition c = make_error_code(e).default_error_condition();
    const bool has = c.category() == errc_condition_category();
    std::printf("%s %u %s %s\\n", std::string(to_string(e)).c_str(),
                static_cast<unsigned>(to_close_code(e)), std::string(to_string(group_of(e))).c_str(),
                has ? c.message().c_str() : "-");
  }
}
`,
  );
  const probe = join(dir, 'probe');
  execFileSync(
    process.env.CXX ?? 'g++',
    [
      '-std=c++20',
      '-O0',
      '-I',
      join(dir, 'include'),
      join(dir, 'src', 'error.cpp'),
      join(dir, 'probe.cpp'),
      '-o',
      probe,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'], timeout: 120_000 },
  );
  const cpp = new Map();
  for (const line of execFileSync(probe, { encoding: 'utf8' }).trim().split('\n')) {
    const [name, code, group, ...condition] = line.split(' ');
    cpp.set(name, { code: Number(code), group, condition: condition.join(' ') });
  }

  execFileSync(
    'python3',
    [
      join(root, 'scripts', 'gen_errc.py'),
      '--def',
      join(inc, 'errc.def'),
      '--out',
      join(dir, 'js', 'generated', 'errc.ts'),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  copyFileSync(join(root, 'js-glue', 'src', 'errors.ts'), join(dir, 'js', 'errors.ts'));
  await build({
    entryPoints: [join(dir, 'js', 'errors.ts')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    outfile: join(dir, 'errors.mjs'),
    logLevel: 'error',
  });
  const js = await import(pathToFileURL(join(dir, 'errors.mjs')).href);
  return { cpp, js };
}

/** Checks that C++ and JS classify every Errc alike (JS class = the doc's class of the C++ group). */
function assertSidesAgree({ cpp, js }, label) {
  assert.deepEqual([...cpp.keys()].sort(), [...errcRows.keys()].sort(), `${label}: Errc set`);
  for (const [name, { code, group }] of cpp) {
    for (const origin of ['local', 'remote']) {
      const e = closeWith(js.errorFromClose, name, code, origin);
      assert.equal(
        e.name,
        groups.get(group)?.[origin],
        `${label}: ${name} (${origin}) in ${group}`,
      );
    }
  }
}

test('changing one row of the error table changes C++ and JS behaviour together', async () => {
  const def = readFileSync(join(root, 'core', 'include', 'mana', 'core', 'errc.def'), 'utf8');
  const rowRe = /^(MANA_ERRC\(server_overload,\s*\w+,\s*)transport(,)/m;
  assert.match(def, rowRe, 'the server_overload row is in group transport');
  const changedDef = def.replace(rowRe, '$1policy   $2');

  const before = await buildVariant(join(work, 'before'), def);
  const changed = await buildVariant(join(work, 'changed'), changedDef);

  // Before: the committed table, as the document and the built package have it.
  assert.deepEqual(before.cpp.get('server_overload'), {
    code: 4010,
    group: 'transport',
    condition: 'transport lost, timed out or shed',
  });
  assert.equal(
    closeWith(before.js.errorFromClose, 'server_overload', 4010, 'remote').name,
    'TransportError',
  );
  assertSidesAgree(before, 'before');

  // After the one-row change, both sides call it a policy refusal.
  assert.deepEqual(changed.cpp.get('server_overload'), {
    code: 4010,
    group: 'policy',
    condition: 'refused by policy',
  });
  const e = closeWith(changed.js.errorFromClose, 'server_overload', 4010, 'remote');
  assert.equal(e.name, 'PolicyError');
  assert.ok(e instanceof changed.js.PolicyError);
  assertSidesAgree(changed, 'changed');

  // Nothing else moved.
  for (const [name, row] of before.cpp) {
    if (name !== 'server_overload') assert.deepEqual(changed.cpp.get(name), row, name);
  }
});
