#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// make demo / make demo-check: SSH in the browser through mana-gateway, all on loopback.
//
//   node scripts/demo.mjs            start everything, print URL + credentials, run until Ctrl-C
//   node scripts/demo.mjs --check    the same on random ports, then drive the page in headless
//                                    Chromium (log in, echo, resize + stty size, exit 3; enrol a
//                                    security key in a virtual authenticator and log in with it), print
//                                    the transcript, stop everything; exit 0 only if all passed
//
// Options: --port N (demo page, default 8080; --check: random), --gateway-port N (default 8022,
// a random free port when taken), --password (also enable password login; root only, see below).
// Environment: MANA_GATEWAY (gateway binary), CHROMIUM (default /usr/bin/chromium).
//
// What it starts (every listener on 127.0.0.1):
// - sshd: Debian's OpenSSH via tools/devkit/sshd.mjs, with its own config, a persistent host key
//   and a demo user key in build/demo/ (generated once with ssh-keygen, never committed).
//   User: as root a dedicated account `mana-demo` (useradd, no password: its password field is
//   '*', so the machine's own sshd cannot log it in with a password, and only this sshd reads the
//   key from build/demo/). Not root: the invoking user (key login only; nothing is written to
//   ~/.ssh). --password (root only) gives mana-demo a generated password (build/demo/password)
//   for the password path of the page: the account then also has that password on this machine.
// - mana-gateway (tools/devkit/gateway.mjs) with build/demo/gateway.toml: Origin = the demo page
//   only, target = that sshd only, HS256 key build/demo/jwt-secret (from the CSPRNG, generated
//   once, mode 0600).
// - the demo server: build/web-demo/ (the page), GET /api/demo (the default target and demo
//   credentials, so the form is prefilled), POST /api/token (a JWT valid 10 minutes, limited to
//   the sshd target, minted with the real secret; same-origin requests only; never in a URL).
// Ctrl-C (SIGINT), SIGTERM and SIGHUP stop all of it; the sshd launcher also kills its process
// tree on exit.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultGatewayBinary, launchGateway } from '../tools/devkit/gateway.mjs';
import { freePort, portFree } from '../tools/devkit/net.mjs';
import { fingerprintOf, startSshd } from '../tools/devkit/sshd.mjs';
import { mintJwt, newSecret, writeSecret } from '../tools/devkit/tokens.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const demoDir = path.join(root, 'build', 'demo');
const webDir = path.join(root, 'build', 'web-demo');
const gatewayBin = defaultGatewayBinary();

const args = process.argv.slice(2);
const check = args.includes('--check');
const wantPassword = args.includes('--password');
const argValue = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : undefined;
};
const isRoot = process.getuid?.() === 0;
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(2)}s`;
const log = (...m) => console.log(`[demo ${elapsed()}]`, ...m);

function fail(msg) {
  console.error(`demo: ${msg}`);
  process.exit(1);
}

// ---- children and cleanup ---------------------------------------------------------------------
let sshd;
let gateway;
let server;
let browser;
let stopping;
const sockets = new Set();

async function stopAll() {
  stopping ??= (async () => {
    if (browser) await browser.close().catch(() => undefined);
    if (server) {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
    if (gateway) await gateway.stop();
    if (sshd) await sshd.stop();
  })();
  return stopping;
}
process.on('exit', () => {
  if (gateway && gateway.process.exitCode === null) gateway.process.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: stopping gateway, sshd and the demo server`);
    void stopAll().then(() => process.exit(check ? 1 : 0));
  });
}

// ---- helpers ------------------------------------------------------------------------------------
async function pickPort(preferred) {
  if (preferred !== undefined && (await portFree(preferred))) return preferred;
  return freePort();
}
function run(cmd, argv, input) {
  const r = spawnSync(cmd, argv, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.stderr || r.error}`);
  return r.stdout;
}
/** Generated once per checkout in build/demo/ (mode 0700): secret, host key, user key. */
function demoMaterial() {
  fs.mkdirSync(demoDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(demoDir, 0o700);
  const secretPath = path.join(demoDir, 'jwt-secret');
  if (!fs.existsSync(secretPath)) writeSecret(secretPath, newSecret());
  const hostKey = path.join(demoDir, 'ssh_host_ed25519_key');
  const userKey = path.join(demoDir, 'demo_user_ed25519');
  for (const [file, comment] of [
    [hostKey, 'mana-demo-host'],
    [userKey, 'mana-demo-user'],
  ]) {
    if (!fs.existsSync(file) || !fs.existsSync(`${file}.pub`)) {
      fs.rmSync(file, { force: true });
      fs.rmSync(`${file}.pub`, { force: true });
      run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
    }
    fs.chmodSync(file, 0o600);
  }
  // sshd (as root) reads the host key itself; the session user never needs to read build/demo.
  let password;
  if (wantPassword) {
    const pwPath = path.join(demoDir, 'password');
    if (!fs.existsSync(pwPath)) {
      fs.writeFileSync(pwPath, randomBytes(12).toString('base64url') + '\n', {
        mode: 0o600,
      });
    }
    password = fs.readFileSync(pwPath, 'utf8').trim();
  }
  return {
    secret: fs.readFileSync(secretPath, 'utf8').trim(),
    secretPath,
    hostKey,
    hostPub: fs.readFileSync(`${hostKey}.pub`, 'utf8').trim(),
    userKey,
    userPrivate: fs.readFileSync(userKey, 'utf8'),
    userPub: fs.readFileSync(`${userKey}.pub`, 'utf8').trim(),
    password,
  };
}

/** The dedicated demo account (root): created once, no usable password unless --password. */
function ensureDemoUser(name) {
  if (spawnSync('id', ['-u', name]).status !== 0) {
    const r = spawnSync('useradd', ['-m', '-s', '/bin/bash', '-c', 'mana-websocket demo', name], {
      encoding: 'utf8',
    });
    if (r.status !== 0 && spawnSync('id', ['-u', name]).status !== 0) {
      throw new Error(`useradd ${name}: ${r.stderr}`);
    }
    log(`created the local account ${name} (remove it with: userdel -r ${name})`);
  }
  // '*' = no password, not locked: sshd (UsePAM no) accepts the key; no password matches.
  if (!wantPassword) run('chpasswd', ['-e'], `${name}:*\n`);
}

// ---- static + API server ------------------------------------------------------------------------
const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

// POST /api/authorized-key: one security-key line from the page's "Enrol a security key" for the
// demo sshd's authorized_keys. Only this shape: an optional verify-required, the sk-ecdsa key type,
// its base64 blob and a plain comment; at most MAX_ADDED_KEYS per run, nothing else is written.
const SK_LINE =
  /^(verify-required )?sk-ecdsa-sha2-nistp256@openssh\.com [A-Za-z0-9+/]{40,600}={0,2}( [\w.@:-]{1,200})?$/;
const MAX_ADDED_KEYS = 16;

function readSmallBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > limit) {
        reject(new Error('too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function startServer({ port, gatewayPort, material, target, user, authorizedKeysPath }) {
  let addedKeys = 0;
  const origins = new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);
  const gatewayUrl = `ws://127.0.0.1:${gatewayPort}/`;
  const csp = [
    "default-src 'self'",
    `connect-src 'self' ws://127.0.0.1:${gatewayPort}`,
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
  ].join('; ');
  const send = (res, code, type, body, extra = {}) => {
    res.writeHead(code, {
      'content-type': type,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'content-security-policy': csp,
      ...extra,
    });
    res.end(body);
  };
  const json = (res, code, obj) => send(res, code, 'application/json', JSON.stringify(obj));
  // Same-origin fetch from the page only: a POST with our custom header (a cross-site form cannot
  // set it, and a cross-site fetch with it needs a CORS preflight we never answer). Answers the
  // refusal itself (405 / 403) and returns false.
  const sameOriginPost = (req, res) => {
    if (req.method !== 'POST' || req.headers['x-mana-demo'] !== '1') {
      json(res, 405, { error: 'POST with x-mana-demo: 1' });
      return false;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.has(origin)) {
      json(res, 403, { error: 'origin not allowed' });
      return false;
    }
    return true;
  };
  const hosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  const srv = http.createServer((req, res) => {
    // DNS rebinding: a foreign site whose name resolves to 127.0.0.1 sends its own Host.
    if (!hosts.has(req.headers.host ?? '')) {
      send(res, 421, 'text/plain', 'unknown host\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/api/demo' && req.method === 'GET') {
      json(res, 200, {
        gatewayUrl,
        target,
        user,
        privateKey: material.userPrivate,
        ...(material.password ? { password: material.password } : {}),
        hostKey: {
          algorithm: 'ssh-ed25519',
          fingerprint: fingerprintOf(material.hostPub),
        },
        authorizeKeys: true,
      });
      return;
    }
    if (url.pathname === '/api/authorized-key') {
      if (!sameOriginPost(req, res)) return;
      readSmallBody(req, 2048).then(
        (body) => {
          const line = body.trim();
          if (!SK_LINE.test(line)) {
            json(res, 400, {
              error: 'not a sk-ecdsa-sha2-nistp256@openssh.com authorized_keys line',
            });
            return;
          }
          const have = fs.readFileSync(authorizedKeysPath, 'utf8').split('\n');
          if (!have.includes(line)) {
            if (addedKeys >= MAX_ADDED_KEYS) {
              json(res, 429, {
                error: `at most ${MAX_ADDED_KEYS} keys per demo run`,
              });
              return;
            }
            fs.appendFileSync(authorizedKeysPath, line + '\n');
            addedKeys++;
            log(`security key added to ${authorizedKeysPath}: ${line.slice(0, 60)}...`);
          }
          json(res, 200, { path: authorizedKeysPath });
        },
        () => json(res, 413, { error: 'body over 2 KiB' }),
      );
      return;
    }
    if (url.pathname === '/api/token') {
      if (!sameOriginPost(req, res)) return;
      const now = Math.floor(Date.now() / 1000);
      const token = mintJwt(material.secret, {
        sub: 'demo',
        iat: now,
        exp: now + 600,
        targets: [`${target.host}:${target.port}`],
      });
      json(res, 200, { token, expiresIn: 600 });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, { error: 'method not allowed' });
      return;
    }
    let rel = decodeURIComponent(url.pathname);
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.resolve(webDir, '.' + rel);
    if (
      !file.startsWith(webDir + path.sep) ||
      !fs.existsSync(file) ||
      !fs.statSync(file).isFile()
    ) {
      send(res, 404, 'text/plain', 'not found\n');
      return;
    }
    send(res, 200, MIME[path.extname(file)] ?? 'application/octet-stream', fs.readFileSync(file));
  });
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

// ---- main ----------------------------------------------------------------------------------------
async function main() {
  if (!fs.existsSync(gatewayBin)) fail(`${gatewayBin} is missing: run \`make build\` first`);
  if (!fs.existsSync(path.join(webDir, 'index.html'))) {
    fail(`${webDir}/index.html is missing: run \`make demo-build\` first`);
  }
  const material = demoMaterial();
  const user = isRoot ? 'mana-demo' : os.userInfo().username;
  if (wantPassword && !isRoot) fail('--password needs root (it sets the password of mana-demo)');
  if (isRoot) ensureDemoUser(user);

  sshd = await startSshd({
    user,
    users: [user],
    hostKeyTypes: [],
    authorizedKeys: [material.userPub],
    ...(material.password ? { password: material.password } : {}),
    extraConfig: `HostKey ${material.hostKey}\nClientAliveInterval 30`,
  });
  const target = { host: '127.0.0.1', port: sshd.port };
  log(`sshd (OpenSSH) on ${target.host}:${target.port}, pid ${sshd.pid}`);

  const webPort = check ? await freePort() : await pickPort(argValue('--port') ?? 8080);
  if (!check && argValue('--port') === undefined && webPort !== 8080) {
    fail('127.0.0.1:8080 is taken: stop what uses it or pass --port N (make demo DEMO_PORT=N)');
  }
  // The preferred gateway port when it is free, else one the kernel picks (`listening` line).
  const preferredGw = argValue('--gateway-port') ?? 8022;
  const gwListen =
    !check && (await portFree(preferredGw)) ? `127.0.0.1:${preferredGw}` : '127.0.0.1:0';
  const gwLogPath = path.join(demoDir, 'gateway.log');
  fs.writeFileSync(gwLogPath, '');
  gateway = await launchGateway({
    binary: gatewayBin,
    dir: demoDir,
    secretFile: material.secretPath,
    listen: gwListen,
    origins: [`http://127.0.0.1:${webPort}`, `http://localhost:${webPort}`],
    targets: [{ host: '127.0.0.1', ports: [target.port] }],
    config: {
      server: { shutdown_grace_ms: 1000 },
      session: { resume_ttl_ms: 60000 },
    },
    logFile: gwLogPath,
    keepLog: false,
  });
  const gwPort = gateway.port;
  void gateway.exited.then(({ code, signal }) => {
    if (!stopping) {
      console.error(`demo: mana-gateway exited (${code ?? signal}); see build/demo/gateway.log`);
      void stopAll().then(() => process.exit(1));
    }
  });
  log(`mana-gateway on ${gateway.url} (config build/demo/gateway.toml)`);

  server = await startServer({
    port: webPort,
    gatewayPort: gwPort,
    material,
    target,
    user,
    authorizedKeysPath: sshd.authorizedKeysPath,
  });
  const url = `http://127.0.0.1:${webPort}/`;
  log(`demo server on ${url}`);

  const hostFp = fingerprintOf(material.hostPub);
  if (!check) {
    console.log(
      [
        '',
        '  mana-websocket demo: SSH in the browser',
        '',
        `  Open       ${url}`,
        `  Target     ${user}@${target.host}:${target.port} (OpenSSH, config ${sshd.configPath})`,
        `  Host key   ssh-ed25519 ${hostFp}`,
        `  Login key  ${path.relative(root, material.userKey)} (the page is prefilled with it)`,
        ...(material.password ? [`  Password   ${material.password}`] : []),
        `  Security   open http://localhost:${webPort}/ (WebAuthn needs a host name), choose`,
        '             "security key", "Enrol a security key", "Add to the demo sshd", Connect',
        `  Gateway    ws://127.0.0.1:${gwPort}/  log: build/demo/gateway.log`,
        '',
        '  Ctrl-C stops sshd, the gateway and this server.',
        '',
      ].join('\n'),
    );
    return;
  }

  const { runCheck } = await import('./demo-check.mjs');
  let ok = false;
  try {
    ok = await runCheck({
      url,
      hostFingerprint: hostFp,
      sshdLog: () => sshd.log(),
      onBrowser: (b) => {
        browser = b;
      },
      log,
    });
  } catch (e) {
    console.error(`demo-check: ${e.stack ?? e}`);
  }
  await stopAll();
  if (!ok) {
    const gl = path.join(demoDir, 'gateway.log');
    console.error('--- gateway log (tail) ---');
    console.error(fs.readFileSync(gl, 'utf8').split('\n').slice(-15).join('\n'));
  }
  log(ok ? 'demo-check: PASSED' : 'demo-check: FAILED');
  process.exit(ok ? 0 : 1);
}

main().catch(async (e) => {
  console.error(`demo: ${e.stack ?? e}`);
  await stopAll();
  process.exit(1);
});
