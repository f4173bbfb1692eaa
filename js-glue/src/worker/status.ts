// SPDX-License-Identifier: Apache-2.0
// A Connection in the worker described for its page views (worker/protocol-status.ts): its status
// snapshot and its events, bounded to the protocol's limits. Diagnostic times are sent as epoch ms
// (performance.timeOrigin + performance.now()): the page maps them onto its own clock.
import type { Connection } from '../connect.js';
import { toFailure } from './failure.js';
import { limits } from './protocol-read.js';
import type { WireConnectionEvent, WireConnectionStatus } from './protocol-status.js';

function origin(): number {
  return (globalThis as { performance?: { timeOrigin?: number } }).performance?.timeOrigin ?? 0;
}

export function connectionStatus(conn: Connection): WireConnectionStatus {
  const s: WireConnectionStatus = {
    state: conn.state,
    pauseReasons: conn.pauseReasons,
    bufferedAmount: conn.bufferedAmount,
    storedSession: conn.storedSession,
  };
  const rtt = conn.rttMs;
  if (rtt !== undefined && Number.isFinite(rtt) && rtt >= 0) s.rttMs = rtt;
  if (conn.server !== undefined) s.server = { ...conn.server };
  const last = toFailure(conn.lastError);
  if (last !== undefined) s.lastError = last;
  return s;
}

/** Calls `listener` with every event of `conn` a page view reports (not credit grants). */
export function forwardEvents(conn: Connection, listener: (e: WireConnectionEvent) => void): void {
  conn.onStateChange(({ from, to, error }) => {
    const f = toFailure(error);
    listener(f === undefined ? { kind: 'state', from, to } : { kind: 'state', from, to, error: f });
  });
  conn.onDiagnostic(({ code, at, phase, detail }) => {
    listener({
      kind: 'diagnostic',
      code: code.slice(0, 64),
      at: Math.max(0, origin() + at),
      phase: phase.slice(0, 32),
      detail: detail.slice(0, limits.maxText),
    });
  });
  conn.onPolicy((p) => {
    if (p.kind === 'credit_grant') return;
    if (p.kind === 'pause' || p.kind === 'resume') {
      listener({ kind: p.kind, reason: p.reason, reasons: [...p.reasons] });
    } else {
      listener({ kind: p.kind, channel: p.channel, detail: p.detail.slice(0, limits.maxText) });
    }
  });
  conn.onPersistence(({ kind, storage, found }) => {
    listener({
      kind: 'persistence',
      persistence: kind,
      storage,
      ...(found !== undefined ? { found } : {}),
    });
  });
}
