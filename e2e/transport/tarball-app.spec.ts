// SPDX-License-Identifier: Apache-2.0
// "The tarball installs into a fresh app and connects to the gateway", in Chromium, once per
// bundler the npm README names (Vite, webpack 5, esbuild). A fresh app outside the tree
// (tools/devkit/scratch-app.mjs: the bundler's template, its own lockfile, an empty npm cache of
// its own, then the npm tarball make js built) imports `connect` from '@mana/websocket', is built
// with the template's `npm run build` and served from its own dist/. The app reads the gateway URL
// and token from a JSON file next to it (never from its URL), echoes 256 KiB of seeded bytes
// through a `tcp` channel and reports on `window.tarballApp`.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  devkit,
  expect,
  repoRoot,
  seededBytes,
  startStaticServer,
  test,
  type StaticServer,
} from '../fixtures';

const jsGlue = JSON.parse(readFileSync(join(repoRoot, 'js-glue', 'package.json'), 'utf8')) as {
  version: string;
};
interface ScratchApp {
  dir: string;
  build(): Promise<unknown>;
  remove(): Promise<void>;
}
type CreateScratchApp = (o: {
  tarball: string;
  template?: string;
  files?: Record<string, string>;
}) => Promise<ScratchApp>;
const tarball =
  process.env.MANA_NPM_TARBALL ??
  join(repoRoot, 'build', 'npm', `mana-websocket-${jsGlue.version}.tgz`);
const BYTES = 256 * 1024;
const BANNER = 'SSH-2.0-mana-e2e-target\r\n';

const MAIN_JS = `import { connect } from '@mana/websocket';
const report = (window.tarballApp = { done: false });
const hex = async (b) =>
  [...new Uint8Array(await crypto.subtle.digest('SHA-256', b))]
    .map((x) => x.toString(16).padStart(2, '0')).join('');
(async () => {
  const cfg = await (await fetch('./mana-e2e.json', { cache: 'no-store' })).json();
  const payload = new Uint8Array(await (await fetch('./payload.bin', { cache: 'no-store' })).arrayBuffer());
  const conn = await connect({ url: cfg.url, token: cfg.token, storage: 'none' });
  const states = [];
  conn.onStateChange((e) => states.push(e.to));
  await conn.whenReady();
  report.state = conn.state;
  const ch = conn.openChannel({ target: { host: '127.0.0.1', port: cfg.port }, kind: 'tcp' });
  const rx = new Uint8Array(cfg.banner + payload.length);
  let got = 0;
  const full = new Promise((resolve) => {
    ch.onData(({ data }) => {
      rx.set(data.subarray(0, rx.length - got), got);
      got += data.length;
      ch.consume(data.length);
      if (got >= rx.length) resolve();
    });
  });
  await ch.opened;
  await ch.writeAll(payload);
  await full;
  const echo = rx.subarray(cfg.banner);
  report.head = new TextDecoder().decode(rx.subarray(0, cfg.banner));
  report.received = got;
  report.exact = echo.length === payload.length && echo.every((b, i) => b === payload[i]);
  report.echoSha = await hex(echo);
  report.states = states;
  conn.dispose();
  report.done = true;
})().catch((e) => {
  report.error = String(e && e.stack ? e.stack : e);
  report.done = true;
});
`;

/** Every .wasm file under dir (bundlers name and place their assets differently). */
function wasmFiles(dir: string, sub = ''): string[] {
  return readdirSync(join(dir, sub), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? wasmFiles(dir, join(sub, e.name))
      : e.name.endsWith('.wasm')
        ? [join(sub, e.name)]
        : [],
  );
}

// Each bundler the npm README names builds the same app from the tarball with its own template
// (tools/devkit/scratch-app/<bundler>: package.json with a `build` script, lockfile, config).
for (const bundler of ['vite', 'webpack', 'esbuild'] as const) {
  test(`the npm tarball in a fresh ${bundler} app (its own empty npm cache) connects and echoes 256 KiB`, async ({
    page,
    startTarget,
    gatewayWith,
  }) => {
    test.setTimeout(180_000); // the app's npm ci fetches the bundler into an empty cache
    expect(existsSync(tarball), `${tarball} is missing: run \`make js\``).toBe(true);
    const t0 = Date.now();
    const { createScratchApp } = await devkit<{ createScratchApp: CreateScratchApp }>(
      'scratch-app.mjs',
    );
    let app: ScratchApp | undefined;
    let server: StaticServer | undefined;
    try {
      app = await createScratchApp({ tarball, template: bundler, files: { 'main.js': MAIN_JS } });
      const tInstall = Date.now();
      await app.build();
      const tBuild = Date.now();
      const dist = join(app.dir, 'dist');
      const shipped = (f: string) =>
        readFileSync(join(app!.dir, 'node_modules/@mana/websocket/dist/internal', f));
      // The core's .wasm is in dist/ byte for byte (under whatever name the bundler gave it).
      const coreWasm = wasmFiles(dist).filter(
        (f) => Buffer.compare(readFileSync(join(dist, f)), shipped('mana-core.wasm')) === 0,
      );
      expect(coreWasm, wasmFiles(dist).join(', ')).toHaveLength(1);

      const echo = await startTarget({ mode: 'echo' });
      server = await startStaticServer(dist);
      const origin = server.origin;
      const gw = await gatewayWith({ targets: [echo], origins: [origin] });
      const payload = await seededBytes(BYTES, 11);
      const sentSha = createHash('sha256').update(payload).digest('hex');
      writeFileSync(join(dist, 'payload.bin'), payload);
      writeFileSync(
        join(dist, 'mana-e2e.json'),
        JSON.stringify({ url: gw.url, token: gw.token(), port: echo.port, banner: BANNER.length }),
      );

      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
      await page.goto(`${origin}/`);
      await page.waitForFunction(() => (window as any).tarballApp?.done === true, undefined, {
        timeout: 20_000,
      });
      const r = await page.evaluate(() => (window as any).tarballApp);
      const tRun = Date.now();
      process.stderr.write(
        `[tarball-app ${bundler}] install ${tInstall - t0} ms, build ${tBuild - tInstall} ms, ` +
          `browser ${tRun - tBuild} ms\n`,
      );

      expect(r.error).toBeUndefined();
      expect(r.state).toBe('ready');
      expect(r.head).toBe(BANNER);
      expect(r.received).toBe(BANNER.length + BYTES);
      expect(r.exact).toBe(true);
      expect(r.echoSha).toBe(sentSha);
      expect(r.states).toEqual(['authenticating', 'ready', 'closed']);
      expect(echo.connections).toHaveLength(1);
      expect(echo.connections[0]!.bytesIn).toBe(BYTES);
      expect(echo.connections[0]!.hashIn()).toBe(sentSha);
      expect(await gw.metric('mana_connections_total')).toBe(1);
      // The wasm core came from the app's own built asset, and only it: the SSH engine (chunk and
      // .wasm) is fetched lazily by openSession(), which this app never calls.
      const wasm = requests.filter((u) => new URL(u).pathname.endsWith('.wasm'));
      expect(wasm).toEqual([`${origin}/${coreWasm[0]!.split('\\').join('/')}`]);
      expect(requests.filter((u) => u.includes('mana-ssh'))).toEqual([]);
      expect(requests.every((u) => u.startsWith(`${origin}/`))).toBe(true);
    } finally {
      await server?.close();
      await app?.remove();
    }
  });
}
