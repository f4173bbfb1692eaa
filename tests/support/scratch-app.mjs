// Shared test helper: a fresh app, outside the source tree, that installs the npm tarball of
// @mana/websocket (make js: build/npm/mana-websocket-<version>.tgz) the way an adopter's app
// would. Node ESM, no dependencies. Used by js-glue/test/package.test.mjs and
// e2e/transport/tarball-app.spec.ts.
//
//   import { createScratchApp } from '../../tests/support/scratch-app.mjs';
//   const app = await createScratchApp({ tarball, vite: true });
//   // ... write files into app.dir, run app.bin('vite') ...
//   await app.remove();
//
// createScratchApp({ tarball, vite?, files? }) -> Promise<ScratchApp>
//   tarball  string   absolute path of the npm tarball.
//   vite     boolean  also install vite (the exact tree pinned in scratch-app/package-lock.json,
//                     a subset of js-glue's lock): `npm ci --prefer-offline`, which may fetch.
//   files    object   extra files { 'name': 'text' } written into the app before the install.
//   ScratchApp: { dir, bin(name) -> path of node_modules/.bin/<name>, cache, remove() }
//
// The rule this helper enforces: the app installs only what it names itself (the tarball and the
// public packages of its own lockfile), never from the source tree and never from whatever an
// earlier install left in ~/.npm. Every app gets its own empty npm cache folder, so a test cannot
// pass because of a warm cache (a spec like `vite@5.4.21` resolved offline once passed only
// where an old registry answer was cached). The tarball then installs with `--offline`: it has no
// dependencies, so nothing may be fetched for it. MANA_SCRATCH_NPM_CACHE=<dir> names a cache to
// reuse instead (a developer's shortcut; CI never sets it).
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const templateDir = join(dirname(fileURLToPath(import.meta.url)), 'scratch-app');
const NPM_FLAGS = ['--no-audit', '--no-fund', '--loglevel=error'];

/** The vite version the template pins (tests compare it with js-glue's, whose cache it shares). */
export const scratchViteVersion = JSON.parse(
  readFileSync(join(templateDir, 'package.json'), 'utf8'),
).devDependencies.vite;

export async function createScratchApp({ tarball, vite = false, files = {} }) {
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
    copyFileSync(join(templateDir, '.npmrc'), join(dir, '.npmrc'));
    if (vite) {
      copyFileSync(join(templateDir, 'package.json'), join(dir, 'package.json'));
      copyFileSync(join(templateDir, 'package-lock.json'), join(dir, 'package-lock.json'));
    } else {
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: 'mana-scratch-app', private: true, type: 'module' }),
      );
    }
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    if (vite) await npm(['ci', '--prefer-offline']);
    await npm(['install', '--offline', tarball]);
  } catch (e) {
    await remove();
    const detail = e && e.stderr ? `\n${e.stderr}` : '';
    throw new Error(
      `scratch app: npm failed (${ownCache ? 'own empty cache' : `cache ${cache}`})${detail}`,
      { cause: e },
    );
  }
  return { dir, cache, bin: (name) => join(dir, 'node_modules', '.bin', name), remove };
}
