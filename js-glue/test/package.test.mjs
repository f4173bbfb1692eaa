// SPDX-License-Identifier: Apache-2.0
// The npm tarball (make js: build/npm/mana-websocket-<version>.tgz) installs offline into a fresh
// project and works from there: exports resolve, the .wasm ships inside, a connection comes up.
// The fresh projects come from tools/devkit/scratch-app.mjs: outside the tree, each with its own
// empty npm cache, so nothing passes because of what an earlier install left in ~/.npm.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createScratchApp, scratchTemplateDeps } from '../../tools/devkit/scratch-app.mjs';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(pkgDir, '..');
const noticesScript = join(repoRoot, 'scripts', 'third_party_notices.py');
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
  assert.ok(files.includes('package/LICENSE'), 'the licence ships inside');
  assert.ok(files.includes('package/THIRD_PARTY_NOTICES'), 'the third-party notices ship inside');
  for (const f of files) {
    assert.match(
      f,
      /^package\/(package\.json|README\.md|LICENSE|THIRD_PARTY_NOTICES|dist\/.+\.(js|d\.ts|d\.mts|mjs|wasm))$/,
      f,
    );
  }
  const manifest = JSON.parse(
    execFileSync('tar', ['xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }),
  );
  const conditions = Object.keys(manifest.exports['.']);
  assert.deepEqual(conditions.slice(0, 2), ['types@<5.2', 'types'], 'types first in exports');
  assert.equal(manifest.exports['./mana-core.wasm'], './dist/internal/mana-core.wasm');
  assert.equal(manifest.exports['./mana-ssh.wasm'], './dist/internal/mana-ssh.wasm');
  assert.ok(files.includes('package/dist/ts5.0/index.d.ts'), 'declarations for TypeScript < 5.2');
  assert.equal(manifest.devDependencies, undefined);
  assert.equal(manifest.license, 'Apache-2.0');
});

test('the tarball carries a notice for every component compiled into the wasm', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mana-notices-'));
  try {
    const notices = join(dir, 'THIRD_PARTY_NOTICES');
    writeFileSync(notices, execFileSync('tar', ['xzOf', tarball, 'package/THIRD_PARTY_NOTICES']));
    // Every component (and every static library wasm/CMakeLists.txt links) has its section.
    const out = execFileSync('python3', [noticesScript, '--check', notices], { encoding: 'utf8' });
    assert.match(out, /covers \d+ components/);
    for (const name of ['libssh2', 'OpenSSL (libcrypto)', 'nlohmann/json', 'Emscripten runtime']) {
      assert.ok(readFileSync(notices, 'utf8').includes(`\n${name}`), name);
    }
    // The repository's copy is the generated one (regenerate with make js and commit it).
    assert.equal(
      readFileSync(notices, 'utf8'),
      readFileSync(join(repoRoot, 'THIRD_PARTY_NOTICES'), 'utf8'),
      'THIRD_PARTY_NOTICES at the repository root is out of date: copy build/js/THIRD_PARTY_NOTICES',
    );
    assert.equal(
      execFileSync('tar', ['xzOf', tarball, 'package/LICENSE'], { encoding: 'utf8' }),
      readFileSync(join(repoRoot, 'LICENSE'), 'utf8'),
    );
    // The check fails when a component's notice is missing.
    const text = readFileSync(notices, 'utf8');
    const start = text.indexOf('\nlibssh2\n');
    const end = text.indexOf('='.repeat(78), start);
    writeFileSync(notices, text.slice(0, start) + '\n' + text.slice(end));
    const r = spawnSync('python3', [noticesScript, '--check', notices], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /libssh2 \(no section\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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

test('the Vite scratch app pins the vite that js-glue builds with', () => {
  assert.equal(scratchTemplateDeps('vite').vite, viteVersion, 'tools/devkit/scratch-app/vite');
});

test('a fresh Vite app builds with the tarball and ships the wasm as an asset', async () => {
  // Its own lockfile and an empty npm cache: vite is fetched as an adopter's app would fetch it.
  const scratch = await createScratchApp({
    tarball,
    template: 'vite',
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
    await scratch.build();
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

test('the declarations type-check with TypeScript 5.0 and skipLibCheck off', async () => {
  const scratch = await createScratchApp({
    tarball,
    template: 'typescript-5.0',
    files: {
      'main.ts': `import {
  attachTerminal,
  connect,
  AuthError,
  ManaError,
  SshSession,
  type Channel,
  type Connection,
  type ConnectOptions,
} from '@mana/websocket';

export async function start(options: ConnectOptions): Promise<Connection> {
  const conn = await connect(options);
  conn.onStateChange((e) => console.log(e.to));
  const ch: Channel = conn.openChannel({ target: { host: 'h', port: 22 }, kind: 'tcp' });
  ch.onData(({ data }) => ch.consume(data.length));
  const ssh: SshSession = await conn.openSession({
    target: { host: 'h', port: 22 },
    username: 'u',
    auth: { password: 'p' },
  });
  void attachTerminal;
  ssh.dispose();
  return conn;
}
export const isAuth = (e: unknown): boolean => e instanceof AuthError && e instanceof ManaError;
`,
    },
  });
  try {
    await scratch.build().catch((e) => {
      throw new Error(`tsc 5.0 rejected the declarations:\n${e.stdout}${e.stderr}`);
    });
  } finally {
    await scratch.remove();
  }
});
