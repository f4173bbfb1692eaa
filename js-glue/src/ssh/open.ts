// SPDX-License-Identifier: Apache-2.0
// openSshSession(): the SSH layer plugged into a connection (Connection.openSession). Checks the
// options, loads the SSH engine, checks the algorithm lists against it, configures it (auth
// methods, algorithms with the host key preference from the known hosts, pty or exec) and starts
// an SshSession on a new `tcp` channel of the connection.
import type { ConnectionBase } from '../connection.js';
import { invalidArgument as invalid } from '../errors.js';
import { loadSshModule } from '../internal/ssh.js';
import type { SshEngineAuth, SshEngineConfig, SshModule } from '../internal/ssh-types.js';
import { engineKind, resolveAlgorithms } from './algorithms.js';
import type { SshAlgorithmKind } from './errors.js';
import { KnownHosts, hostKeyPreference } from './known-hosts.js';
import { createSshSession, type SshSession } from './session.js';
import type { SshAuthMethod, SshSessionOptions } from './types.js';

function toEngineAuth(m: SshAuthMethod): SshEngineAuth {
  if ('password' in m) return { type: 'password', password: m.password };
  if ('privateKey' in m) {
    return m.passphrase !== undefined
      ? { type: 'publickey', privateKey: m.privateKey, passphrase: m.passphrase }
      : { type: 'publickey', privateKey: m.privateKey };
  }
  return { type: 'keyboard-interactive' };
}

function validate(options: SshSessionOptions): void {
  const t = options.target as { host?: unknown; port?: unknown } | undefined;
  if (t === undefined || typeof t.host !== 'string' || t.host === '') {
    throw invalid('openSession: target.host is required');
  }
  if (typeof t.port !== 'number' || !Number.isInteger(t.port) || t.port < 1 || t.port > 65535) {
    throw invalid('openSession: target.port must be an integer 1..65535');
  }
  if (typeof options.username !== 'string' || options.username === '') {
    throw invalid('openSession: username is required');
  }
  const methods = Array.isArray(options.auth) ? options.auth : [options.auth];
  if (methods.length === 0 || methods.some((m) => typeof m !== 'object')) {
    throw invalid('openSession: auth needs {password}, {privateKey} or {keyboardInteractive}');
  }
  if (options.term === undefined && options.command === undefined) {
    throw invalid('openSession: pass `term` (pty + shell) or `command` (exec)');
  }
  if (options.term !== undefined) {
    const { cols, rows } = options.term;
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) {
      throw invalid('openSession: term.cols and term.rows must be positive integers');
    }
  }
}

const supportedCache = new WeakMap<SshModule, Map<SshAlgorithmKind, string[]>>();

/** What the loaded engine can negotiate of `kind` (asked once per module). */
function supportedOf(module: SshModule): (kind: SshAlgorithmKind) => string[] {
  let cache = supportedCache.get(module);
  if (cache === undefined) {
    cache = new Map();
    supportedCache.set(module, cache);
  }
  const c = cache;
  return (kind) => {
    let list = c.get(kind);
    if (list === undefined) {
      list = module.supportedAlgorithms(engineKind[kind]);
      c.set(kind, list);
    }
    return list;
  };
}

/** @internal Connection.openSession(). */
export async function openSshSession(
  conn: ConnectionBase,
  options: SshSessionOptions,
): Promise<SshSession> {
  validate(options);
  const module = await loadSshModule(options.engine);
  const algorithms = resolveAlgorithms(options.algorithms, options.ciphers, supportedOf(module));
  const known = new KnownHosts(options.knownHosts);
  const stored = known.get(options.target.host, options.target.port);
  const methods = Array.isArray(options.auth) ? options.auth : [options.auth];
  const term = options.term;
  const config: SshEngineConfig = {
    username: options.username,
    auth: methods.map(toEngineAuth),
    kexPref: algorithms.kex.join(','),
    hostkeyPref: hostKeyPreference(stored?.keyType, algorithms.hostKey),
    cipherPref: algorithms.cipher.join(','),
    macPref: algorithms.mac.join(','),
    // ssh-rsa names both the host-key algorithm and RSA user-key SHA-1 signatures (as in OpenSSH).
    signPref: ['rsa-sha2-512', 'rsa-sha2-256']
      .concat(algorithms.hostKey.includes('ssh-rsa') ? ['ssh-rsa'] : [])
      .join(','),
    keepaliveS: Math.round((options.keepaliveMs ?? 30000) / 1000),
    appHighWater: options.highWaterMark ?? 512 * 1024,
    ...(options.channelWindow !== undefined ? { channelWindow: options.channelWindow } : {}),
    ...(options.command !== undefined ? { command: options.command } : {}),
    ...(term !== undefined
      ? {
          pty: true,
          termType: term.type ?? 'xterm-256color',
          cols: term.cols,
          rows: term.rows,
          env: Object.entries(term.env ?? {}),
        }
      : {}),
  };
  const channel = conn.openChannel({ target: options.target, kind: 'tcp' });
  const engine = new module.SshEngine(config);
  const session = createSshSession(conn, channel, engine, options, known);
  await session._opened;
  return session;
}
