// Assembles the npm package in build/js/package/ (tsc already wrote dist/ there): the Emscripten
// output (mana-core.mjs + .wasm from `make wasm`), the hand-written declarations of that module, a
// README and a package.json without the development fields. `npm pack` runs on that directory.
// MANA_WASM_DIR overrides where the wasm build is read (default build/wasm-release).
//
// The Emscripten glue (mana-core.mjs, mana-ssh.mjs) is generated code that emcc only strips of
// whitespace; it is shipped minified by terser (compress + mangle as an ES module: names inside
// the module only; embind reads its names from the wasm and the glue reaches its exports as
// Module["name"], which terser leaves alone). That is 27 % less glue for a page (brotli: core
// 11.1 -> 7.7 KB, ssh 24.8 -> 18.5 KB; docs/ssh-in-browser.md). MANA_MINIFY_GLUE=0 copies the glue
// as emcc wrote it (e.g. to read a wasm-debug build's glue).
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { minify } from 'terser';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(pkgDir, '..');
const stage = join(root, 'build', 'js', 'package');
const wasmDir = resolve(process.env.MANA_WASM_DIR ?? join(root, 'build', 'wasm-release'));
const internal = join(stage, 'dist', 'internal');
mkdirSync(internal, { recursive: true });
const minifyGlue = process.env.MANA_MINIFY_GLUE !== '0';

/** Copies src to dst; Emscripten glue (.mjs) is minified unless MANA_MINIFY_GLUE=0. */
async function stageFile(src, dst) {
  if (!minifyGlue || !src.endsWith('.mjs')) {
    copyFileSync(src, dst);
    return;
  }
  // ecma 2020: the glue needs nothing newer, and terser then emits no newer syntax either.
  // comments 'some' keeps @license / @preserve blocks.
  const out = await minify(readFileSync(src, 'utf8'), {
    module: true,
    ecma: 2020,
    compress: { passes: 2 },
    mangle: true,
    format: { comments: 'some' },
  });
  if (typeof out.code !== 'string' || out.code.length === 0) {
    throw new Error(`stage: terser produced no output for ${src}`);
  }
  writeFileSync(dst, out.code);
}
for (const f of ['mana-core.mjs', 'mana-core.wasm']) {
  const src = join(wasmDir, f);
  if (!existsSync(src)) {
    console.error(`stage: ${src} is missing; run \`make wasm\` first`);
    process.exit(1);
  }
  await stageFile(src, join(internal, f));
}
copyFileSync(join(pkgDir, 'src', 'internal', 'mana-core.d.mts'), join(internal, 'mana-core.d.mts'));
// The SSH engine (mana-ssh.mjs + .wasm, built when MANA_WASM_SSH is ON; MANA_WASM_SSH_DIR overrides
// where it is read). MANA_REQUIRE_SSH=1 makes a missing module an error.
const sshDir = resolve(process.env.MANA_WASM_SSH_DIR ?? wasmDir);
const sshFiles = ['mana-ssh.mjs', 'mana-ssh.wasm'];
if (sshFiles.every((f) => existsSync(join(sshDir, f)))) {
  for (const f of sshFiles) await stageFile(join(sshDir, f), join(internal, f));
  copyFileSync(join(pkgDir, 'src', 'internal', 'mana-ssh.d.mts'), join(internal, 'mana-ssh.d.mts'));
} else if (process.env.MANA_REQUIRE_SSH === '1') {
  console.error(`stage: ${sshDir}/mana-ssh.{mjs,wasm} are missing; run \`make wasm\` first`);
  process.exit(1);
} else {
  // A core-only build (make wasm WASM_SSH=OFF): a module that refuses, so bundlers still resolve
  // the lazy import and openSession() rejects with a clear message.
  writeFileSync(
    join(internal, 'mana-ssh.mjs'),
    'export default function createManaSsh() {\n' +
      "  return Promise.reject(new Error('this build of @mana/websocket has no SSH engine " +
      "(built with WASM_SSH=OFF)'));\n}\n",
  );
  copyFileSync(join(pkgDir, 'src', 'internal', 'mana-ssh.d.mts'), join(internal, 'mana-ssh.d.mts'));
  console.warn(
    `stage: no SSH engine in ${sshDir} (MANA_WASM_SSH is OFF): openSession() unavailable`,
  );
}
// The session worker (src/worker/entry.ts) as one module at a fixed URL, dist/mana-worker.js
// (`@mana/websocket/worker`): a worker cannot use the page's import map or bundler, so xterm's
// headless terminal and serialize addon are bundled in. The Emscripten glue stays external and is
// imported from ./internal/ (it finds its .wasm next to itself).
const glueExternal = {
  name: 'glue-external',
  setup(b) {
    b.onResolve({ filter: /^\.\/mana-(core|ssh)\.mjs$/ }, (args) => ({
      path: `./internal/${args.path.slice(2)}`,
      external: true,
    }));
  },
};
await build({
  entryPoints: [join(pkgDir, 'src', 'worker', 'entry.ts')],
  outfile: join(stage, 'dist', 'mana-worker.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  keepNames: true,
  legalComments: 'eof',
  logLevel: 'warning',
  // xterm's headless build probes `"requestIdleCallback" in window`, which throws in a worker:
  // the worker's global scope stands in for window (it has no requestIdleCallback, so xterm
  // schedules with setTimeout).
  define: { window: 'globalThis' },
  // @xterm/headless names a `module` file it does not ship: use its ES module build directly.
  alias: {
    '@xterm/headless': join(pkgDir, 'node_modules/@xterm/headless/lib-headless/xterm-headless.mjs'),
    '@xterm/addon-serialize': join(
      pkgDir,
      'node_modules/@xterm/addon-serialize/lib/addon-serialize.mjs',
    ),
  },
  plugins: [glueExternal],
});
// The tests import the staged dist/worker/*.js, whose screen model imports @xterm/*: let them
// resolve js-glue's node_modules (npm pack never packs a node_modules folder).
const stagedModules = join(stage, 'node_modules');
if (!existsSync(stagedModules)) symlinkSync(join(pkgDir, 'node_modules'), stagedModules, 'dir');
copyFileSync(join(pkgDir, 'README.md'), join(stage, 'README.md'));
// The project's licence and the notices of what the .wasm modules contain (libssh2, OpenSSL,
// nlohmann/json, the Emscripten runtime): generated by scripts/third_party_notices.py from the
// pinned Debian sources (`make js` writes build/js/THIRD_PARTY_NOTICES; MANA_NOTICES overrides).
copyFileSync(join(root, 'LICENSE'), join(stage, 'LICENSE'));
const notices = resolve(
  process.env.MANA_NOTICES ?? join(root, 'build', 'js', 'THIRD_PARTY_NOTICES'),
);
if (!existsSync(notices)) {
  console.error(
    `stage: ${notices} is missing; \`make js\` generates it (scripts/third_party_notices.py)`,
  );
  process.exit(1);
}
copyFileSync(notices, join(stage, 'THIRD_PARTY_NOTICES'));
// Declarations for TypeScript before 5.2 (exports condition `types@<5.2`): the same files, except
// that disposeSymbol is declared as a unique symbol of ours instead of `typeof Symbol.dispose`,
// which needs the ESNext.Disposable lib of TypeScript 5.2+. From 5.2 on, the `[Symbol.dispose]`
// members type `using` declarations.
const dist = join(stage, 'dist');
const ts50 = join(dist, 'ts5.0');
for (const rel of readdirSync(dist, { recursive: true })) {
  if (!/\.d\.m?ts$/.test(rel) || rel.startsWith('ts5.0')) continue;
  mkdirSync(dirname(join(ts50, rel)), { recursive: true });
  copyFileSync(join(dist, rel), join(ts50, rel));
}
const disposeDts = join(ts50, 'dispose.d.ts');
const before = readFileSync(disposeDts, 'utf8');
const after = before.replace(
  /export declare const disposeSymbol: typeof Symbol\.dispose;/,
  'export declare const disposeSymbol: unique symbol;',
);
if (after === before) {
  console.error(`stage: ${disposeDts}: the disposeSymbol declaration was not found`);
  process.exit(1);
}
writeFileSync(disposeDts, after);
const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
delete manifest.scripts;
delete manifest.devDependencies;
writeFileSync(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`stage: ${stage} (wasm from ${wasmDir}${minifyGlue ? ', glue minified' : ''})`);
