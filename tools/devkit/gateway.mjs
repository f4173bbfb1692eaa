// SPDX-License-Identifier: Apache-2.0
// The one launcher of mana-gateway for the JS tools (js-glue tests, e2e, scripts/demo.mjs,
// bench/browser). Python twin: gateway.py.
//
//   import { launchGateway } from '<root>/tools/devkit/gateway.mjs';
//   const gw = await launchGateway({ origins: ['http://127.0.0.1:8080'],
//                                    targets: [{ host: '127.0.0.1', ports: [sshd.port] }] });
//   // gw.url, gw.port, gw.pid, gw.token({ sub: 'alice' }), await gw.metric('...'), gw.logs()
//   await gw.stop();
//
// It writes the TOML config and the JWT key (mode 0600) into `dir`, starts the gateway with
// `--listen 127.0.0.1:0` (or `listen`) and takes the port from the `listening` log line, so there
// is no window in which another process can take the port. The gateway writes that line at every
// log level. Startup is bounded (`startTimeoutMs`); the error carries the tail of stderr.
//
// launchGateway(options) -> Promise<Gateway>
//   binary         default $MANA_GATEWAY, else build/native-debug/bin/mana-gateway
//   origins        string[]  [origins] allow (default [])
//   allowMissingOrigin boolean [origins] allow_missing (default false)
//   targets        { host?: string, cidr?: string, ports: number[] }[]  [[targets]]
//   config         { section: { key: value } }  every other key, e.g. { session: {
//                  resume_ttl_ms: 5000 }, server: { debug_sessions: true } }; values are strings,
//                  numbers, booleans or arrays of them
//   logLevel       [server] log_level (default 'info')
//   listen         'HOST:PORT' (default '127.0.0.1:0')
//   secret         the HS256 key (default: a fresh one from tokens.newSecret())
//   secretFile     an existing key file to use instead (`secret` is then read from it)
//   dir            where config, key and log go (default: a temp dir, removed by stop())
//   logFile        also append the gateway's stderr to this file
//   echoWarnings   write warn/error lines (and non-JSON lines) to this process's stderr
//   env            extra environment variables (ASan options, LD_PRELOAD shims)
//   startTimeoutMs default 10000
// Gateway: { url, port, pid, process, secret, dir, configPath, config (the TOML text),
//            log: parsed JSON lines so far, logs(): stderr text so far (last 1 MiB),
//            token(claims?): an HS256 JWT (default sub 'dev', exp now + 300 s),
//            metrics(): Map of /metrics, metric(name): one value (0 when absent),
//            exited: Promise<{code, signal}>, stop(): SIGTERM, SIGKILL after 7 s; idempotent }
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mintJwt, newSecret, writeSecret } from './tokens.mjs';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** $MANA_GATEWAY, else the native-debug build's gateway. */
export function defaultGatewayBinary() {
  return process.env.MANA_GATEWAY ?? join(repoRoot, 'build', 'native-debug', 'bin', 'mana-gateway');
}

function tomlValue(v) {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new Error(`gateway config: cannot write ${JSON.stringify(v)} as TOML`);
}

/** The TOML text of `sections` ({ name: { key: value } }) and `targets`. */
export function gatewayToml(sections, targets = []) {
  let text = '';
  for (const [name, keys] of Object.entries(sections)) {
    text += `[${name}]\n`;
    for (const [k, v] of Object.entries(keys)) {
      if (v !== undefined) text += `${k} = ${tomlValue(v)}\n`;
    }
  }
  for (const t of targets) {
    text += '[[targets]]\n';
    for (const [k, v] of Object.entries(t)) text += `${k} = ${tomlValue(v)}\n`;
  }
  return text;
}

const LOG_KEEP = 1 << 20;

export async function launchGateway(options = {}) {
  const binary = options.binary ?? defaultGatewayBinary();
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: run \`make build\` first (or set MANA_GATEWAY)`);
  }
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'mana-gw-'));
  let secretPath;
  let secret;
  if (options.secretFile !== undefined) {
    secretPath = resolve(options.secretFile);
    secret = readFileSync(secretPath, 'utf8').trim();
  } else {
    secret = options.secret ?? newSecret();
    secretPath = writeSecret(join(dir, 'jwt-secret'), secret);
  }
  const listen = options.listen ?? '127.0.0.1:0';
  const extra = options.config ?? {};
  const sections = {
    // No `listen` key: the config refuses port 0; the command line's --listen sets it.
    server: { log_level: options.logLevel ?? 'info', ...(extra.server ?? {}) },
    origins: {
      allow: options.origins ?? [],
      allow_missing: options.allowMissingOrigin ?? false,
      ...(extra.origins ?? {}),
    },
    auth: { jwt_secret_file: secretPath, ...(extra.auth ?? {}) },
  };
  for (const [name, keys] of Object.entries(extra)) {
    if (!(name in sections)) sections[name] = keys;
  }
  const config = gatewayToml(sections, options.targets ?? []);
  const configPath = join(dir, 'gateway.toml');
  writeFileSync(configPath, config);

  const child = spawn(binary, ['--config', configPath, '--listen', listen], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: options.env ? { ...process.env, ...options.env } : process.env,
  });
  const log = [];
  let text = '';
  let pending = '';
  let onListening;
  // Resolves once the process is gone and its stderr read to the end ('error': it never
  // started, e.g. not executable).
  const exited = new Promise((r) => {
    child.once('close', (code, signal) => r({ code, signal }));
    child.once('error', (error) => r({ code: null, signal: null, error }));
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s) => {
    if (options.logFile) appendFileSync(options.logFile, s);
    text = (text + s).slice(-LOG_KEEP);
    pending += s;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        if (options.echoWarnings) process.stderr.write(`[gateway] ${line}\n`);
        continue;
      }
      if (options.keepLog !== false) log.push(entry);
      if (options.echoWarnings && (entry.level === 'warn' || entry.level === 'error')) {
        process.stderr.write(`[gateway] ${line}\n`);
      }
      if (entry.event === 'listening' && typeof entry.port === 'number') onListening?.(entry.port);
    }
  });
  const cleanup = () => {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  let port;
  try {
    port = await new Promise((resolvePort, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`mana-gateway did not log \`listening\` within ${timeoutMs} ms`));
      }, timeoutMs);
      onListening = (p) => {
        clearTimeout(timer);
        resolvePort(p);
      };
      void exited.then(({ code, signal, error }) => {
        clearTimeout(timer);
        reject(
          new Error(
            error
              ? `mana-gateway did not start: ${error.message}`
              : `mana-gateway exited (${code ?? signal}) before listening`,
          ),
        );
      });
    });
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    cleanup();
    throw new Error(`${e.message}; stderr:\n${text.slice(-2000)}`);
  }

  const metrics = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    const body = await res.text();
    const out = new Map();
    for (const line of body.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const sp = line.lastIndexOf(' ');
      out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
    }
    return out;
  };
  const tls = Boolean(extra.tls?.cert_file);
  let stopping;
  return {
    url: `${tls ? 'wss' : 'ws'}://127.0.0.1:${port}/`,
    port,
    pid: child.pid,
    process: child,
    secret,
    dir,
    configPath,
    config,
    log,
    logs: () => text,
    exited,
    token: (claims = {}) => mintJwt(secret, { sub: 'dev', ...claims }),
    metrics,
    metric: async (name) => (await metrics()).get(name) ?? 0,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 7000);
        await exited;
        clearTimeout(t);
        cleanup();
      })();
      return stopping;
    },
  };
}
