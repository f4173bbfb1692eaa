// The npm tarball (make js: build/npm/mana-websocket-<version>.tgz) installs offline into a fresh
// project and works from there: exports resolve, the .wasm ships inside, a connection comes up.
// The fresh projects come from tests/support/scratch-app.mjs: outside the tree, each with its own
// empty npm cache, so nothing passes because of what an earlier install left in ~/.npm.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createScratchApp, scratchViteVersion } from '../../tests/support/scratch-app.mjs';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;
const viteVersion = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).devDependencies
  .vite;
const tarball =
  process.env.MANA_NPM_TARBALL ??
  join(pkgDir, '..', 'build', 'npm', `mana-websocket-${version}.tgz`);

test('tarball holds only the package files', () => {
  assert.ok(existsSync(tarball), `${tarball} is missing: run \`make js\``);
  const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .sort();
  assert.ok(files.includes('package/dist/internal/mana-core.wasm'), 'the wasm ships inside');
  assert.ok(files.includes('package/dist/index.d.ts'));
  assert.ok(files.includes('package/package.json'));
  for (const f of files) {
    assert.match(
      f,
      /^package\/(package\.json|README\.md|dist\/.+\.(js|d\.ts|d\.mts|mjs|wasm))$/,
      f,
    );
  }
  const manifest = JSON.parse(
    execFileSync('tar', ['xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }),
  );
  assert.equal(Object.keys(manifest.exports['.'])[0], 'types', 'types first in exports');
  assert.equal(manifest.devDependencies, undefined);
});

test('installs offline into a fresh project and connects', async () => {
  const scratch = await createScratchApp({ tarball });
  const app = scratch.dir;
  try {
    writeFileSync(
      join(app, 'main.mjs'),
      `import { readFileSync } from 'node:fs';
import * as m from '@mana/websocket';
const wasm = readFileSync(new URL('./node_modules/@mana/websocket/dist/internal/mana-core.wasm', import.meta.url));
await m.loadCore({ wasmBinary: wasm });
class WS { constructor(url, p) { this.p = p; this.readyState = 0; this.protocol = ''; this.bufferedAmount = 0; WS.last = this; }
  send(d) { this.sent = d; } close() { this.readyState = 3; } }
const c = await m.connect({ url: 'ws://x/', WebSocket: WS, storage: 'none', environment: { document: null, window: null } });
WS.last.readyState = 1; WS.last.onopen({});
const hello = JSON.parse(WS.last.sent);
c.dispose();
console.log(JSON.stringify({ state: c.state, hello: hello.t, proto: WS.last.p, live: await m.liveCoreSessions(),
  errors: typeof m.AuthError }));
`,
    );
    const out = JSON.parse(execFileSync('node', ['main.mjs'], { cwd: app, encoding: 'utf8' }));
    assert.deepEqual(out, {
      state: 'closed',
      hello: 'hello',
      proto: 'mana.ssh.v1',
      live: 0,
      errors: 'function',
    });
  } finally {
    await scratch.remove();
  }
});

test('the scratch app pins the vite that js-glue builds with', () => {
  assert.equal(scratchViteVersion, viteVersion, 'tests/support/scratch-app/package.json');
});

test('a fresh Vite app builds with the tarball and ships the wasm as an asset', async () => {
  // Its own lockfile and an empty npm cache: vite is fetched as an adopter's app would fetch it.
  const scratch = await createScratchApp({
    tarball,
    vite: true,
    files: {
      'index.html':
        '<!doctype html><html><body><pre id="out"></pre><script type="module" src="/main.js"></script></body></html>\n',
      'main.js': `import { connect } from '@mana/websocket';
connect({ url: 'ws://' + location.host + '/ws' }).then((conn) => {
  conn.onStateChange((e) => { document.getElementById('out').textContent = e.to; });
});
`,
    },
  });
  const app = scratch.dir;
  try {
    execFileSync(scratch.bin('vite'), ['build', '--logLevel', 'warn'], { cwd: app, stdio: 'pipe' });
    const assets = readdirSync(join(app, 'dist', 'assets'));
    const wasm = assets.filter((f) => f.endsWith('.wasm') && f.startsWith('mana-core'));
    assert.equal(wasm.length, 1, `one core .wasm asset (${assets.join(', ')})`);
    // The SSH engine (when built: make wasm WASM_SSH=ON, the default) is a separate chunk +
    // .wasm, fetched only when openSession() runs.
    const withSsh = existsSync(
      join(app, 'node_modules', '@mana', 'websocket', 'dist', 'internal', 'mana-ssh.wasm'),
    );
    const sshWasm = assets.filter((f) => f.endsWith('.wasm') && f.startsWith('mana-ssh'));
    const sshChunk = assets.filter((f) => f.endsWith('.js') && f.startsWith('mana-ssh'));
    assert.equal(sshWasm.length, withSsh ? 1 : 0, `SSH .wasm asset (${assets.join(', ')})`);
    assert.equal(sshChunk.length, withSsh ? 1 : 0, `separate SSH chunk (${assets.join(', ')})`);
    const entry = assets.filter((f) => f.startsWith('index') && f.endsWith('.js'));
    for (const f of withSsh ? entry : []) {
      const text = readFileSync(join(app, 'dist', 'assets', f), 'utf8');
      assert.ok(!text.includes(sshWasm[0]), 'the entry does not reference the SSH wasm');
      assert.ok(text.includes(sshChunk[0]), 'the entry imports the SSH chunk dynamically');
    }
    const shipped = readFileSync(
      join(app, 'node_modules', '@mana', 'websocket', 'dist', 'internal', 'mana-core.wasm'),
    );
    assert.equal(Buffer.compare(readFileSync(join(app, 'dist', 'assets', wasm[0])), shipped), 0);
    const js = assets
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(join(app, 'dist', 'assets', f), 'utf8'))
      .join('\n');
    assert.ok(js.includes(wasm[0]), 'the bundle locates the hashed .wasm asset');
    assert.ok(js.includes('mana.ssh.v1'), 'the library is bundled');
  } finally {
    await scratch.remove();
  }
});
