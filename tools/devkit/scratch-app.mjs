// SPDX-License-Identifier: Apache-2.0
// Dev harness: a fresh app, outside the source tree, that installs the npm tarball of
// @mana/websocket (make js: build/npm/mana-websocket-<version>.tgz) the way an adopter's app
// would. Node ESM, no dependencies. Used by js-glue/test/package.test.mjs and
// e2e/transport/tarball-app.spec.ts.
//
//   import { createScratchApp } from '<root>/tools/devkit/scratch-app.mjs';
//   const app = await createScratchApp({ tarball, template: 'vite', files: { 'main.js': ... } });
//   await app.build();            // npm run build: the app's dist/
//   await app.remove();
//
// createScratchApp({ tarball, template?, files? }) -> Promise<ScratchApp>
//   tarball   string  absolute path of the npm tarball.
//   template  string  a folder of scratch-app/ whose files the app starts from: its package.json
//                     (a `build` script), package-lock.json and build config. `npm ci
//                     --prefer-offline` installs the pinned tree, which may fetch:
//                       vite            Vite 5 (the version js-glue builds with)
//                       webpack         webpack 5 + webpack-cli, no loader for the .wasm
//                       esbuild         esbuild, the .wasm files copied next to the bundle
//                       typescript-5.0  the oldest TypeScript the declarations support (tsc,
//                                       skipLibCheck off)
//                     Without a template: an empty ESM project.
//   files     object  extra files { 'name': 'text' } written into the app before the install.
//   ScratchApp: { dir, cache, bin(name) -> node_modules/.bin/<name>, build() -> npm run build,
//                 remove() }
//
// The rule this helper enforces: the app installs only what it names itself (the tarball and the
// public packages of its own lockfile), never from the source tree and never from whatever an
// earlier install left in ~/.npm. Every app gets its own empty npm cache folder, so a test cannot
// pass because of a warm cache (a spec like `vite@5.4.21` resolved offline once passed only
// where an old registry answer was cached). The tarball then installs with `--offline`: it has no
// dependencies, so nothing may be fetched for it. MANA_SCRATCH_NPM_CACHE=<dir> names a cache to
// reuse instead (a developer's shortcut; CI never sets it).
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const templateDir = join(dirname(fileURLToPath(import.meta.url)), 'scratch-app');
const NPM_FLAGS = ['--no-audit', '--no-fund', '--loglevel=error'];

/** The devDependencies a template pins (tests compare vite's with js-glue's). */
export function scratchTemplateDeps(template) {
  return JSON.parse(readFileSync(join(templateDir, template, 'package.json'), 'utf8'))
    .devDependencies;
}

export async function createScratchApp({ tarball, template, files = {} }) {
  const dir = mkdtempSync(join(tmpdir(), 'mana-scratch-app-'));
  const ownCache = !process.env.MANA_SCRATCH_NPM_CACHE;
  const cache = process.env.MANA_SCRATCH_NPM_CACHE || join(dir, '.npm-cache');
  const remove = async () => rmSync(dir, { recursive: true, force: true });
  // Only npm's own settings from the environment: no cache, prefix or registry override from a
  // surrounding `npm run` (npm_config_*), which would make the app depend on the caller.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_config_')),
  );
  env.npm_config_cache = cache;
  const npm = (args) => run('npm', [...args, ...NPM_FLAGS], { cwd: dir, env, maxBuffer: 1 << 24 });
  try {
    if (template) {
      cpSync(join(templateDir, template), dir, { recursive: true });
    } else {
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: 'mana-scratch-app', private: true, type: 'module' }),
      );
    }
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    if (template) await npm(['ci', '--prefer-offline']);
    await npm(['install', '--offline', tarball]);
  } catch (e) {
    await remove();
    const detail = e && e.stderr ? `\n${e.stderr}` : '';
    throw new Error(
      `scratch app: npm failed (${ownCache ? 'own empty cache' : `cache ${cache}`})${detail}`,
      { cause: e },
    );
  }
  const build = () =>
    run('npm', ['run', '--silent', 'build'], { cwd: dir, env, maxBuffer: 1 << 24 });
  return { dir, cache, bin: (name) => join(dir, 'node_modules', '.bin', name), build, remove };
}
