// SPDX-License-Identifier: Apache-2.0
// openSshSession(): the SSH layer plugged into a connection (Connection.openSession). Checks the
// options, loads the SSH engine, checks the algorithm lists against it, configures it (auth
// methods, algorithms with the host key preference from the known hosts, pty or exec) and starts
// an SshSession on a new `tcp` channel of the connection, or, with `via`, on the tunnel of the
// last bastion of a jump-host chain (ssh/jump.ts).
import type { ConnectionBase } from '../connection.js';
import { invalidArgument as invalid } from '../errors.js';
import { loadSshModule } from '../internal/ssh.js';
import type { SshEngineConfig } from '../internal/ssh-types.js';
import { loginConfig, supportedOf, validateLogin } from './engine-config.js';
import { jumpHostsOf, openJumpChain, planJumpChain } from './jump.js';
import { KnownHosts } from './known-hosts.js';
import { createSshSession, type SshSession } from './session.js';
import type { SshSessionOptions } from './types.js';

function validate(options: SshSessionOptions): void {
  validateLogin(options, '');
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

/** @internal Connection.openSession(). */
export async function openSshSession(
  conn: ConnectionBase,
  options: SshSessionOptions,
): Promise<SshSession> {
  validate(options);
  const hops = jumpHostsOf(options);
  const module = await loadSshModule(options.engine);
  const supported = supportedOf(module);
  const known = new KnownHosts(options.knownHosts);
  const term = options.term;
  const config: SshEngineConfig = {
    ...loginConfig(options, known, supported),
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
  if (hops.length === 0) {
    const channel = conn.openChannel({ target: options.target, kind: 'tcp' });
    const session = createSshSession(conn, channel, new module.SshEngine(config), options, known);
    await session._opened;
    return session;
  }
  // Every layer's configuration is checked before the first byte goes out.
  const plan = planJumpChain(hops, options, supported);
  const wire = await openJumpChain(conn, module, plan);
  const session = createSshSession(conn, wire, new module.SshEngine(config), options, known, {
    layer: {
      role: 'target',
      hop: hops.length,
      host: options.target.host,
      port: options.target.port,
    },
    via: hops.map((h) => ({ host: h.target.host, port: h.target.port, username: h.username })),
  });
  await session._opened;
  return session;
}
