// SPDX-License-Identifier: Apache-2.0
// An application's bundler minifies class names (a default `vite build` turns AuthError into `Bs`).
// Every error class names itself, so `e.name` and `String(e)` stay readable in a minified bundle:
// the package's dist/ bundled and minified by esbuild without keepNames, then imported.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = join(root, 'build', 'js', 'package', 'dist');

test('error names survive minification without keepNames', async () => {
  const result = await build({
    entryPoints: [join(dist, 'index.js')],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    external: ['*.mjs'],
    write: false,
    logLevel: 'error',
  });
  // In internal/, next to the glue: the bundle keeps the glue's imports as internal/*.js wrote
  // them ('./mana-core.mjs').
  const file = join(dist, 'internal', `.minified-names-${process.pid}.mjs`);
  writeFileSync(file, result.outputFiles[0].contents);
  try {
    const lib = await import(pathToFileURL(file).href);
    const names = Object.keys(lib).filter((k) => /Error$/.test(k) && typeof lib[k] === 'function');
    assert.ok(names.length >= 14, `error classes exported: ${names.join(', ')}`);
    let mangled = 0;
    for (const k of names) {
      const cls = lib[k];
      if (cls.name !== k) mangled++;
      const e = new cls('boom', { code: 'x', origin: 'local', methods: [], hostKey: {} });
      assert.equal(e.name, k, `${k}: name`);
      assert.equal(String(e), `${k}: boom`);
      assert.ok(e instanceof lib.ManaError);
    }
    assert.ok(mangled > 0, 'the minifier renamed the classes (else this test proves nothing)');
  } finally {
    rmSync(file, { force: true });
  }
});
