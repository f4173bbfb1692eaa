// SPDX-License-Identifier: Apache-2.0
// What the worker's host opens (worker/entry.ts): a Connection per session (`open` with `connect`)
// or a hosted Connection shared by channels and sessions (`connect`, then `open-channel` / `open`
// with `connectionId`). The connections run in the worker: the resume token stays in memory (the
// worker is what survives a reload) and there is no document (no hidden pause).
import type { Connection } from '../connect.js';
import type { ConnectOptions } from '../connection-types.js';
import type { SshJumpHost, SshSessionOptions } from '../ssh/types.js';
import { channelSession, type HostConnection } from './hosted-connection.js';
import type { OpenedSession, PageAsk } from './host.js';
import type { WireConnectOptions, WireJumpHost, WireSessionOptions } from './protocol.js';
import { sessionAuth } from './questions.js';
import { connectionStatus, forwardEvents } from './status.js';

/** SSH channel window and high-water mark of a terminal session in the worker. */
const TERMINAL_CHANNEL_WINDOW = 64 * 1024;
const TERMINAL_HIGH_WATER = 32 * 1024;

export type ConnectFn = (options: ConnectOptions) => Promise<Connection>;

/** The SshSessionOptions of a wire session (flow 'manual'; the page answers the questions). */
export function sessionOptions(s: WireSessionOptions, ask: PageAsk): SshSessionOptions {
  return {
    target: s.target,
    username: s.username,
    // Keyboard-interactive prompts and security-key signatures go to the opening page (host.ts),
    // as hostKey.verify does.
    auth: sessionAuth(s.auth, ask),
    flow: 'manual',
    knownHosts: 'memory',
    ...(s.term !== undefined
      ? {
          term: s.term,
          // A terminal: less output in flight ahead of a keystroke's echo under a flood (the
          // channel window and the unconsumed bytes are all ahead of it). bench/browser
          // measures it (flood_worker_*); bulk streams keep the defaults.
          channelWindow: TERMINAL_CHANNEL_WINDOW,
          highWaterMark: TERMINAL_HIGH_WATER,
        }
      : {}),
    ...(s.command !== undefined ? { command: s.command } : {}),
    ...(s.keepaliveMs !== undefined ? { keepaliveMs: s.keepaliveMs } : {}),
    ...(s.timeoutMs !== undefined ? { timeoutMs: s.timeoutMs } : {}),
    ...(s.ciphers !== undefined ? { ciphers: s.ciphers } : {}),
    ...(s.algorithms !== undefined ? { algorithms: s.algorithms } : {}),
    ...(s.verifyHostKey === true && ask.verifyHostKey !== undefined
      ? { hostKey: { verify: ask.verifyHostKey } }
      : {}),
    ...(s.via !== undefined ? { via: s.via.map((h, i) => jumpHost(h, i, ask)) } : {}),
  };
}

/** A bastion of `via` in the worker: its own host key question (`hop` i) and algorithms. */
function jumpHost(h: WireJumpHost, hop: number, ask: PageAsk): SshJumpHost {
  const verify = ask.verifyHostKey;
  return {
    target: h.target,
    username: h.username,
    // This bastion's keyboard-interactive rounds go to the page with its `hop`.
    auth: sessionAuth(h.auth, {
      keyboardInteractive: (prompts, info) => ask.keyboardInteractive(prompts, info, hop),
      signSecurityKey: ask.signSecurityKey,
    }),
    knownHosts: 'memory',
    ...(h.verifyHostKey === true && verify !== undefined
      ? { hostKey: { verify: (info) => verify(info, hop) } }
      : {}),
    ...(h.algorithms !== undefined ? { algorithms: h.algorithms } : {}),
    ...(h.ciphers !== undefined ? { ciphers: h.ciphers } : {}),
    ...(h.keepaliveMs !== undefined ? { keepaliveMs: h.keepaliveMs } : {}),
    ...(h.timeoutMs !== undefined ? { timeoutMs: h.timeoutMs } : {}),
  };
}

/** `connect`: a hosted connection; its channels and sessions share its WebSocket. */
export async function openHostConnection(
  connect: ConnectFn,
  c: WireConnectOptions,
  extra: Partial<ConnectOptions> = {},
): Promise<HostConnection> {
  const conn = await connect({
    ...extra,
    url: c.url,
    ...(c.token !== undefined ? { token: c.token } : {}),
    storage: 'memory',
  });
  try {
    await conn.whenReady();
  } catch (e) {
    conn.dispose();
    throw e;
  }
  return {
    async openChannel(target) {
      const ch = conn.openChannel({ target, kind: 'tcp' });
      // Before the open resolves: the first bytes may come with it.
      const session = channelSession(ch);
      try {
        await ch.opened;
      } catch (e) {
        ch.close('open failed');
        throw e;
      }
      return session;
    },
    openSession: (s, ask) => conn.openSession(sessionOptions(s, ask)),
    onClose(listener) {
      conn.onStateChange(({ to, error }) => {
        if (to !== 'closed') return;
        listener({
          code: error?.code ?? 'closed',
          message: error?.message ?? 'the connection closed',
          ...(error === undefined ? { normal: true } : {}),
        });
      });
    },
    status: () => connectionStatus(conn),
    onEvent: (listener) => {
      forwardEvents(conn, listener);
    },
    setAppPaused: (on) => {
      if (conn.state !== 'closed') conn.setAppPaused(on);
    },
    close: (code, reason) => {
      conn.close(code, reason);
    },
    dispose: () => {
      conn.dispose();
    },
  };
}

/** `open` with `connect`: a connection of its own, disposed with the session. */
export async function openOwnSession(
  connect: ConnectFn,
  c: WireConnectOptions,
  s: WireSessionOptions,
  ask: PageAsk,
  extra: Partial<ConnectOptions> = {},
): Promise<OpenedSession> {
  const conn = await openHostConnection(connect, c, extra);
  try {
    const session = await conn.openSession(s, ask);
    return {
      session,
      release: () => {
        conn.dispose();
      },
    };
  } catch (e) {
    conn.dispose();
    throw e;
  }
}
