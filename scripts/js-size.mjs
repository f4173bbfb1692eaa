#!/usr/bin/env node
// Sizes of what the npm package ships and what a page loads: raw, `gzip -9` and brotli (Node's
// default, quality 11) of the wasm modules, their Emscripten glue, the TypeScript output (as
// shipped and bundled + minified as a bundler serves it: js-glue/scripts/bundle-min.mjs) and the
// npm tarball (raw only: it is gzip already). gzip reads stdin, so no file name is in its header.
// `make js-size` prints the table; bench/browser/run.mjs records the same object (`sizes` in
// build/bench/browser.json, the rows of docs/benchmarks.md) through measureSizes().
//
//   node scripts/js-size.mjs [--json] [--cache FILE]   (after `make js`)
//
// --cache FILE keeps the results per file content (SHA-256) in FILE: brotli at quality 11 takes
// seconds per MB. Rows whose files are missing (no SSH engine: WASM_SSH=OFF) are left out.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** raw / gzip -9 / brotli byte counts of one buffer. */
export function sizesOf(buf) {
  const r = spawnSync('gzip', ['-9c'], { input: buf, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`gzip: ${r.stderr}`);
  return { raw: buf.length, gzip: r.stdout.length, brotli: zlib.brotliCompressSync(buf).length };
}

function readCache(cacheFile) {
  if (!cacheFile) return {};
  try {
    return JSON.parse(fs.readFileSync(cacheFile, 'utf8'));
  } catch {
    return {}; // none yet, or unreadable: measured again
  }
}

function sumOf(rows, parts, file) {
  const sum = (k) => parts.reduce((a, p) => a + rows[p][k], 0);
  return { file, raw: sum('raw'), gzip: sum('gzip'), brotli: sum('brotli') };
}

/**
 * The size rows, keyed by row name: { file, raw, gzip?, brotli? }. Throws when the package is
 * not built (no dist/index.js) or a measuring tool fails.
 */
export function measureSizes({
  root = repoRoot,
  pkgDir = path.join(root, 'build', 'js', 'package'),
  cacheFile,
} = {}) {
  const dist = path.join(pkgDir, 'dist');
  const internal = path.join(dist, 'internal');
  if (!fs.existsSync(path.join(dist, 'index.js'))) {
    throw new Error(`${dist}/index.js is missing: run \`make js\` first`);
  }
  const version = JSON.parse(fs.readFileSync(path.join(root, 'js-glue', 'package.json'))).version;
  const files = {
    'mana-core.wasm': path.join(internal, 'mana-core.wasm'),
    'mana-core.mjs': path.join(internal, 'mana-core.mjs'),
    'mana-ssh.wasm': path.join(internal, 'mana-ssh.wasm'),
    'mana-ssh.mjs': path.join(internal, 'mana-ssh.mjs'),
    'npm-tarball': path.join(root, 'build', 'npm', `mana-websocket-${version}.tgz`),
  };
  const cache = readCache(cacheFile);
  const out = {};
  for (const [name, file] of Object.entries(files)) {
    if (!fs.existsSync(file)) continue;
    const buf = fs.readFileSync(file);
    if (name === 'npm-tarball') {
      // Already gzip-compressed: only its size counts.
      out[name] = { file: path.relative(root, file), raw: buf.length };
      continue;
    }
    const key = createHash('sha256').update(buf).digest('hex');
    cache[key] ??= sizesOf(buf);
    out[name] = { file: path.relative(root, file), ...cache[key] };
  }
  if (cacheFile) {
    fs.mkdirSync(path.dirname(cacheFile), { recursive: true });
    fs.writeFileSync(cacheFile, JSON.stringify(cache));
  }
  const cat = (list) => Buffer.concat(list.map((f) => fs.readFileSync(f)));
  const jsFiles = (dir) =>
    fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.js'))
      .sort()
      .map((f) => path.join(dir, f));
  out['dist-js'] = { file: 'build/js/package/dist/*.js', ...sizesOf(cat(jsFiles(dist))) };
  const sshDir = path.join(dist, 'ssh');
  if (fs.existsSync(sshDir)) {
    out['dist-ssh-js'] = {
      file: 'build/js/package/dist/ssh/*.js + internal/ssh.js',
      ...sizesOf(cat([...jsFiles(sshDir), path.join(internal, 'ssh.js')])),
    };
  }
  // What a page loads for SSH: both wasm modules, their glue and the TS output.
  const parts = ['mana-core.wasm', 'mana-core.mjs', 'mana-ssh.wasm', 'mana-ssh.mjs', 'dist-js'];
  if (parts.every((p) => out[p]) && out['dist-ssh-js']) {
    out['ssh-bundle-total'] = sumOf(
      out,
      [...parts, 'dist-ssh-js'],
      'wasm + glue + dist js (sum of the rows)',
    );
    out['js-glue-total'] = sumOf(
      out,
      ['mana-core.mjs', 'mana-ssh.mjs', 'dist-js', 'dist-ssh-js'],
      'JS only: both .mjs glues + dist js',
    );
  }
  // The TS output minified as a bundler serves it (esbuild bundle of dist/index.js with every
  // dist/**/*.js it reaches, glue external). The JS target (<= 50 KB brotli) counts
  // js-served-total: this row plus the shipped (terser-minified) glue.
  const bundleMin = path.join(root, 'js-glue', 'scripts', 'bundle-min.mjs');
  const min = spawnSync(process.execPath, [bundleMin, pkgDir], { maxBuffer: 1 << 26 });
  if (min.status !== 0) throw new Error(`bundle-min: ${min.stderr}`);
  out['dist-js-minified'] = {
    file: 'dist/**/*.js bundled + minified (esbuild), as a bundler serves it',
    ...sizesOf(min.stdout),
  };
  if (out['mana-core.mjs']) {
    const glues = ['mana-core.mjs', 'mana-ssh.mjs'].filter((p) => out[p]);
    const which = glues.length === 2 ? 'both .mjs glues' : 'the core glue';
    out['js-served-total'] = sumOf(
      out,
      [...glues, 'dist-js-minified'],
      `JS served: ${which} (shipped minified) + minified TS output`,
    );
  }
  return out;
}

/** The rows as a fixed-width table (one line each, bytes right-aligned, `-` where not measured). */
export function formatSizes(rows) {
  const line = (name, raw, gzip, brotli, file) =>
    `${name.padEnd(18)} ${String(raw).padStart(9)} ${String(gzip).padStart(9)} ` +
    `${String(brotli).padStart(9)}  ${file}`;
  return [
    line('size', 'raw', 'gzip -9', 'brotli', 'what'),
    ...Object.entries(rows).map(([name, s]) =>
      line(name, s.raw, s.gzip ?? '-', s.brotli ?? '-', s.file),
    ),
  ].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const json = args[0] === '--json' ? args.shift() : undefined;
  const cacheFile = args[0] === '--cache' && args[1] ? path.resolve(args[1]) : undefined;
  if (args.length !== (cacheFile ? 2 : 0)) {
    console.error('usage: node scripts/js-size.mjs [--json] [--cache FILE]');
    process.exit(2);
  }
  try {
    const rows = measureSizes({ cacheFile });
    console.log(json ? JSON.stringify(rows, null, 2) : formatSizes(rows));
  } catch (e) {
    console.error(`js-size: ${e.message}`);
    process.exit(1);
  }
}
