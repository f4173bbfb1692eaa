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
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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
copyFileSync(join(pkgDir, 'README.md'), join(stage, 'README.md'));
const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
delete manifest.scripts;
delete manifest.devDependencies;
writeFileSync(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`stage: ${stage} (wasm from ${wasmDir}${minifyGlue ? ', glue minified' : ''})`);
