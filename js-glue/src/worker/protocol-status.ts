// SPDX-License-Identifier: Apache-2.0
// What a hosted connection tells its views about itself (worker/hosted-connection.ts ->
// worker/remote-connection.ts): a status snapshot (state, pause reasons, RTT, bufferedAmount, the
// server's hello_ok, the last error) on `connected` and with every `connection-event`, and the
// Connection's events (state, diagnostic, policy, persistence). Checked with the readers and
// bounds of protocol-read.ts.
//
// Not forwarded: policy `credit_grant` (one per consume, with the worker's numeric channel ids,
// which a page never sees): a page reads a channel's credit with RemoteChannel.stats().
import type { CoreChannelStats } from '../internal/core-types.js';
import type {
  ConnectionState,
  PauseReason,
  ServerInfo,
  StoredSessionOutcome,
} from '../connection-types.js';
import type { StorageMode } from '../storage.js';
import type { WireFailure } from './protocol.js';
import {
  bool,
  fail,
  int,
  limits,
  optional,
  parseFailure,
  rec,
  str,
  type Rec,
} from './protocol-read.js';

export interface WireConnectionStatus {
  state: ConnectionState;
  pauseReasons: PauseReason[];
  rttMs?: number;
  bufferedAmount: number;
  server?: ServerInfo;
  lastError?: WireFailure;
  storedSession: StoredSessionOutcome;
}

/** A Connection event. `at` of a diagnostic is epoch ms (the page maps it to its own clock). */
export type WireConnectionEvent =
  | { kind: 'state'; from: ConnectionState; to: ConnectionState; error?: WireFailure }
  | { kind: 'diagnostic'; code: string; at: number; phase: string; detail: string }
  | { kind: 'pause' | 'resume'; reason: PauseReason; reasons: PauseReason[] }
  | { kind: 'rate_limited' | 'channel_limit'; channel: number; detail: string }
  | {
      kind: 'persistence';
      persistence: 'load' | 'persist' | 'clear';
      storage: StorageMode;
      found?: boolean;
    };

const states = ['connecting', 'authenticating', 'ready', 'reconnecting', 'closed'] as const;
const pauses: readonly string[] = ['transport', 'hidden', 'offline', 'app'] as const;
const outcomes = ['none', 'resuming', 'lock_busy', 'invalid'] as const;
const u32 = 2 ** 32;

function oneOf<const A extends readonly string[]>(m: Rec, k: string, allowed: A): A[number] {
  const v = str(m, k, 32);
  if (!(allowed as readonly string[]).includes(v)) fail(`${k}: unknown`);
  return v;
}

function num(m: Rec, k: string): number {
  const v = m[k];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`${k}: not a number >= 0`);
  return v;
}

function reasons(v: unknown): PauseReason[] {
  if (!Array.isArray(v) || v.length > pauses.length) fail('reasons: not a list of pause reasons');
  return v.map((x: unknown) => {
    if (typeof x !== 'string' || !pauses.includes(x)) fail('reasons: unknown pause reason');
    return x as PauseReason;
  });
}

function nullable<T>(m: Rec, k: string, read: (m: Rec, k: string) => T): T | null {
  return m[k] === null ? null : read(m, k);
}

function parseServer(v: unknown): ServerInfo {
  const s = rec(v, 'server');
  return {
    server: str(s, 'server', 256),
    maxFrame: int(s, 'maxFrame', 0, u32),
    heartbeatMs: int(s, 'heartbeatMs', 0, u32),
    idleTimeoutMs: int(s, 'idleTimeoutMs', 0, u32),
    maxChannels: int(s, 'maxChannels', 0, u32),
    window: int(s, 'window', 0, u32),
    resumeTtlMs: nullable(s, 'resumeTtlMs', (r, k) => int(r, k, 0, u32)),
    route: nullable(s, 'route', (r, k) => str(r, k, 64)),
  };
}

export function parseStatus(v: unknown): WireConnectionStatus {
  const s = rec(v, 'status');
  const out: WireConnectionStatus = {
    state: oneOf(s, 'state', states),
    pauseReasons: reasons(s.pauseReasons),
    bufferedAmount: int(s, 'bufferedAmount', 0, Number.MAX_SAFE_INTEGER),
    storedSession: oneOf(s, 'storedSession', outcomes),
  };
  const rtt = optional(s, 'rttMs', num);
  if (rtt !== undefined) out.rttMs = rtt;
  if (s.server !== undefined) out.server = parseServer(s.server);
  if (s.lastError !== undefined) out.lastError = parseFailure(s.lastError);
  return out;
}

export function parseEvent(v: unknown): WireConnectionEvent {
  const e = rec(v, 'event');
  const kind = str(e, 'kind', 32);
  switch (kind) {
    case 'state': {
      const out: WireConnectionEvent = {
        kind,
        from: oneOf(e, 'from', states),
        to: oneOf(e, 'to', states),
      };
      if (e.error !== undefined) out.error = parseFailure(e.error);
      return out;
    }
    case 'diagnostic':
      return {
        kind,
        code: str(e, 'code', 64),
        at: num(e, 'at'),
        phase: str(e, 'phase', 32),
        detail: str(e, 'detail', limits.maxText),
      };
    case 'pause':
    case 'resume':
      return {
        kind,
        reason: oneOf(e, 'reason', pauses) as PauseReason,
        reasons: reasons(e.reasons),
      };
    case 'rate_limited':
    case 'channel_limit':
      return {
        kind,
        channel: int(e, 'channel', 0, u32),
        detail: str(e, 'detail', limits.maxText),
      };
    case 'persistence': {
      const out: WireConnectionEvent = {
        kind,
        persistence: oneOf(e, 'persistence', ['load', 'persist', 'clear']),
        storage: oneOf(e, 'storage', ['session', 'memory', 'none']),
      };
      const found = optional(e, 'found', bool);
      if (found !== undefined) out.found = found;
      return out;
    }
    default:
      return fail('event.kind: unknown');
  }
}

const statsKeys = [
  'sent',
  'sendLimit',
  'acked',
  'received',
  'consumed',
  'recvLimit',
  'window',
  'replayBytes',
] as const;

export function parseChannelStats(v: unknown): CoreChannelStats | null {
  if (v === null) return null;
  const s = rec(v, 'stats');
  const out = {} as Record<(typeof statsKeys)[number], number>;
  for (const k of statsKeys) out[k] = int(s, k, 0, Number.MAX_SAFE_INTEGER);
  return out;
}
