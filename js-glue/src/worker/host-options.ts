// SPDX-License-Identifier: Apache-2.0
// The limits and timings of a session worker's host (host.ts), each with its default.
export interface HostOptions {
  /** Grace of a session without a view, ms. Default 30 000. */
  graceMs?: number;
  /** Sessions (and channels) one host keeps. Default 64. */
  maxSessions?: number;
  /** Connections one host keeps. Default 16. */
  maxConnections?: number;
  /** Input queued per session, bytes. Default 1 MiB. */
  maxInputBytes?: number;
  /** Bytes a read-only view of a stream session may lag before it is dropped. Default 4 MiB. */
  maxReadOnlyLag?: number;
  /**
   * Live output a terminal view's page may have unparsed before it gets frames of the screen
   * instead of the stream (hosted-session.ts), bytes. Default 16 KiB (below the 32 KiB the
   * worker lets a terminal session hold unconsumed, so a lagging page is noticed).
   */
  frameLagBytes?: number;
  /** Least time between two frames sent to one view, ms. Default 16 (one frame at 60 Hz). */
  frameIntervalMs?: number;
  /** Time a page has to answer a host-key question, ms. Default 120 000. */
  hostKeyTimeoutMs?: number;
  /**
   * Time a page has to answer a keyboard-interactive round, ms. Default 120 000 (the session's
   * own `timeoutMs`, default 30 s, covers the whole open and usually ends it first).
   */
  kbdTimeoutMs?: number;
  /** Time a page has to answer a security key's `sign`, ms. Default 120 000. */
  signTimeoutMs?: number;
}
