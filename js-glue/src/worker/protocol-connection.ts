// SPDX-License-Identifier: Apache-2.0
// The page <-> worker messages of hosted connections (a Connection held by the worker, shared by
// the channels and SSH sessions opened on it; worker/hosted-connection.ts). A channel on a hosted
// connection is then a stream session of worker/protocol.ts (`opened`, `data`, `consume`,
// `input`, `attach`, `session-ended`), so only the connection's own messages are here. Checked
// with the same readers and bounds as protocol.ts (protocol-read.ts).
import type { CoreChannelStats } from '../internal/core-types.js';
import { bool, fail, int, limits, optional, rec, str, type Rec } from './protocol-read.js';
import {
  parseChannelStats,
  parseEvent,
  parseStatus,
  type WireConnectionEvent,
  type WireConnectionStatus,
} from './protocol-status.js';

export type { WireConnectionEvent, WireConnectionStatus } from './protocol-status.js';

/** The part of ConnectOptions that crosses to the worker (no functions, no storage). */
export interface WireConnectOptions {
  url: string;
  token?: string;
}

/** Why a hosted connection ended (`connection-ended`). */
export type ConnectionEndReason = 'closed' | 'error' | 'detached-too-long';

export const idMax = 64;
const reqMax = Number.MAX_SAFE_INTEGER;

export type ConnectionPageMessage =
  /** Opens a Connection in the worker (one WebSocket for what is opened on it). */
  | { v: 1; type: 'connect'; req: number; connect: WireConnectOptions; graceMs?: number }
  /** Becomes a view of hosted connection `connectionId` again (after a reload). */
  | { v: 1; type: 'attach-connection'; req: number; connectionId: string; secret: string }
  /** A raw channel on the connection: a stream session (replayed from `offset` on attach). */
  | {
      v: 1;
      type: 'open-channel';
      req: number;
      connectionId: string;
      target: { host: string; port: number };
      graceMs?: number;
    }
  /** This page's view of the connection is gone (the connection ends once nothing uses it). */
  | { v: 1; type: 'release-connection'; connectionId: string }
  /** A fresh status snapshot (answered by `connection-event` with `req`). */
  | { v: 1; type: 'connection-status'; req: number; connectionId: string }
  /** Connection.setAppPaused(on) in the worker. */
  | { v: 1; type: 'pause-connection'; connectionId: string; on: boolean }
  /** Connection.close(code, reason) in the worker: the connection ends for every page. */
  | { v: 1; type: 'close-connection'; connectionId: string; code: number; reason: string }
  /** Channel.stats() of a channel (a stream session) this page views (answered by `channel-stats`). */
  | { v: 1; type: 'channel-stats'; req: number; sessionId: string };

export type ConnectionWorkerMessage =
  | {
      v: 1;
      type: 'connected';
      req: number;
      connectionId: string;
      secret: string;
      /** Absent from workers of before it. */
      status?: WireConnectionStatus;
    }
  /**
   * The connection's status after `event` (none: the answer to `connection-status` `req`). Sent to
   * every view of the connection.
   */
  | {
      v: 1;
      type: 'connection-event';
      connectionId: string;
      req?: number;
      status: WireConnectionStatus;
      event?: WireConnectionEvent;
    }
  | { v: 1; type: 'channel-stats'; req: number; sessionId: string; stats: CoreChannelStats | null }
  | {
      v: 1;
      type: 'connection-ended';
      connectionId: string;
      reason: ConnectionEndReason;
      code?: string;
      message?: string;
    };

export function parseConnect(v: unknown): WireConnectOptions {
  const c = rec(v, 'connect');
  const connect: WireConnectOptions = { url: str(c, 'url') };
  if (!/^wss?:\/\//u.test(connect.url)) fail('connect.url: not a ws: or wss: URL');
  const token = optional(c, 'token', (r, k) => str(r, k, limits.maxSecretText));
  if (token !== undefined) connect.token = token;
  return connect;
}

const grace = (m: Rec) =>
  optional(m, 'graceMs', (r, k) => int(r, k, limits.minGraceMs, limits.maxGraceMs));

/** A connection message from a page, or undefined when `type` is none of them. */
export function parseConnectionPageMessage(
  m: Rec,
  type: string,
): ConnectionPageMessage | undefined {
  const v = 1 as const;
  switch (type) {
    case 'connect': {
      const out: ConnectionPageMessage = {
        v,
        type,
        req: int(m, 'req', 0, reqMax),
        connect: parseConnect(m.connect),
      };
      const g = grace(m);
      if (g !== undefined) out.graceMs = g;
      return out;
    }
    case 'attach-connection':
      return {
        v,
        type,
        req: int(m, 'req', 0, reqMax),
        connectionId: str(m, 'connectionId', idMax),
        secret: str(m, 'secret', 128),
      };
    case 'open-channel': {
      const t = rec(m.target, 'target');
      const out: ConnectionPageMessage = {
        v,
        type,
        req: int(m, 'req', 0, reqMax),
        connectionId: str(m, 'connectionId', idMax),
        target: { host: str(t, 'host', 255), port: int(t, 'port', 1, 65535) },
      };
      const g = grace(m);
      if (g !== undefined) out.graceMs = g;
      return out;
    }
    case 'release-connection':
      return { v, type, connectionId: str(m, 'connectionId', idMax) };
    case 'connection-status':
      return {
        v,
        type,
        req: int(m, 'req', 0, reqMax),
        connectionId: str(m, 'connectionId', idMax),
      };
    case 'pause-connection':
      return { v, type, connectionId: str(m, 'connectionId', idMax), on: bool(m, 'on') };
    case 'close-connection': {
      const code = int(m, 'code', 1000, 4999);
      if (code !== 1000 && code < 4000) fail('code: not 1000 or 4000..4999');
      return {
        v,
        type,
        connectionId: str(m, 'connectionId', idMax),
        code,
        reason: str(m, 'reason', 123),
      };
    }
    case 'channel-stats':
      return { v, type, req: int(m, 'req', 0, reqMax), sessionId: str(m, 'sessionId', idMax) };
    default:
      return undefined;
  }
}

const endReasons: readonly string[] = ['closed', 'error', 'detached-too-long'];

/** The optional `code` and `message` of an end (`session-ended`, `connection-ended`), on `out`. */
export function withEndDetails<T extends { code?: string; message?: string }>(m: Rec, out: T): T {
  const code = optional(m, 'code', (r, k) => str(r, k, 64));
  if (code !== undefined) out.code = code;
  const message = optional(m, 'message', str);
  if (message !== undefined) out.message = message;
  return out;
}

/** A connection message from the worker, or undefined when `type` is none of them. */
export function parseConnectionWorkerMessage(
  m: Rec,
  type: string,
): ConnectionWorkerMessage | undefined {
  const v = 1 as const;
  switch (type) {
    case 'connected': {
      const out: ConnectionWorkerMessage = {
        v,
        type,
        req: int(m, 'req', 0, reqMax),
        connectionId: str(m, 'connectionId', idMax),
        secret: str(m, 'secret', 128),
      };
      if (m.status !== undefined) out.status = parseStatus(m.status);
      return out;
    }
    case 'connection-event': {
      const out: ConnectionWorkerMessage = {
        v,
        type,
        connectionId: str(m, 'connectionId', idMax),
        status: parseStatus(m.status),
      };
      const req = optional(m, 'req', (r, k) => int(r, k, 0, reqMax));
      if (req !== undefined) out.req = req;
      if (m.event !== undefined) out.event = parseEvent(m.event);
      return out;
    }
    case 'channel-stats':
      return {
        v,
        type,
        req: int(m, 'req', 0, reqMax),
        sessionId: str(m, 'sessionId', idMax),
        stats: parseChannelStats(m.stats),
      };
    case 'connection-ended': {
      const reason = str(m, 'reason', 32);
      if (!endReasons.includes(reason)) fail('reason: unknown');
      const out: ConnectionWorkerMessage = {
        v,
        type,
        connectionId: str(m, 'connectionId', idMax),
        reason: reason as ConnectionEndReason,
      };
      return withEndDetails(m, out);
    }
    default:
      return undefined;
  }
}
