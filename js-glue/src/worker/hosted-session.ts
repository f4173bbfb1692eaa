// SPDX-License-Identifier: Apache-2.0
// One SSH session kept by the worker host (host.ts): the session, its screen model, the views
// attached to it (at most one controlling view and one read-only view) and its credit.
//
// Credit: the SshSession runs in flow 'manual'. Output goes to the screen model and, transferred,
// to the attached views; the session is credited (consume) only when the controlling view's page
// reports its xterm parsed the bytes. While no controlling view is attached nothing is consumed
// (pause reason `detached`): libssh2 stops reading the SSH channel at the session's high-water
// mark, so mana credit stops, the gateway stops reading from sshd and TCP backpressure holds sshd.
// A view that reattaches gets the serialized screen instead of the withheld bytes, which are then
// credited at once.
//
// A stream session (`screen` null: an exec's output, a download) has no screen model: every
// output byte the controlling view has not consumed is kept (`#pending`, bounded by the session's
// credit: the engine stops reading at its high-water mark) and a reattaching view gets them again
// after `attached` (whose `offset` says where they start), so nothing is lost across a reload.
import type { EventRegistration } from '../emitter.js';
import type { CoreChannelStats } from '../internal/core-types.js';
import type { SshCloseEvent, SshExitEvent } from '../ssh/types.js';
import type { SessionEndReason, WorkerMessage } from './protocol.js';
import type { ScreenModel } from './screen.js';
import { GraceTimer, type Timers } from './grace.js';

/** What the host needs of an SshSession (tests substitute their own). */
export interface HostSession {
  readonly onData: EventRegistration<Uint8Array>;
  readonly onStderr: EventRegistration<Uint8Array>;
  readonly onExit: EventRegistration<SshExitEvent>;
  readonly onClose: EventRegistration<SshCloseEvent>;
  readonly onWritable: EventRegistration<number>;
  readonly unconsumed: number;
  write(data: Uint8Array): number;
  consume(n: number): void;
  resize(cols: number, rows: number): void;
  close(): void;
  dispose(): void;
  /** A raw channel's credit and byte counters (RemoteChannel.stats()); absent: none. */
  channelStats?(): CoreChannelStats | null;
}

/** A page's end of the channel to the host. */
export interface PageLink {
  readonly pageId: string;
  send(msg: WorkerMessage, transfer?: Transferable[]): void;
}

interface View {
  link: PageLink;
  /** Bytes posted to the view and not yet reported parsed. */
  outstanding: number;
}

/** Session-level pause reasons of a hosted session. */
export type HostedPauseReason = 'detached';

export interface HostedSessionOptions {
  id: string;
  secret: string;
  session: HostSession;
  /** The terminal's screen model; null for a stream session. */
  screen: ScreenModel | null;
  /** Releases what the session ran on (its connection). */
  release: () => void;
  graceMs: number;
  /** Input bytes queued while the session does not accept them. */
  maxInputBytes: number;
  /** Bytes a read-only view may lag behind before it is dropped. */
  maxReadOnlyLag: number;
  /** The session ended (once). */
  ended: (reason: SessionEndReason, code?: string, message?: string) => void;
  timers?: Timers;
}

export class HostedSession {
  readonly id: string;
  readonly secret: string;
  readonly #o: HostedSessionOptions;
  readonly #session: HostSession;
  readonly #screen: ScreenModel | null;
  /** Stream session: output not consumed by the controlling view, oldest first. */
  #pending: { data: Uint8Array; stream: 'stdout' | 'stderr' }[] = [];
  #pendingBytes = 0;
  /** Output bytes the controlling views consumed (or the screen stood for) so far. */
  #consumedTotal = 0;
  #control: View | undefined;
  #readOnly: View | undefined;
  /** Output that arrived while a view was being attached (the screen is being serialized). */
  #held: { data: Uint8Array; stream: 'stdout' | 'stderr' }[] | undefined;
  #heldBytes = 0;
  #input: Uint8Array[] = [];
  #inputBytes = 0;
  readonly #grace: GraceTimer;
  #endReason: SessionEndReason | undefined;
  #ended = false;

  constructor(o: HostedSessionOptions) {
    this.#o = o;
    this.id = o.id;
    this.secret = o.secret;
    this.#session = o.session;
    this.#screen = o.screen;
    this.#grace = new GraceTimer(o.graceMs, o.timers, () => {
      this.end('detached-too-long');
    });
    const s = o.session;
    s.onData((d) => {
      this.#output(d, 'stdout');
    });
    s.onStderr((d) => {
      this.#output(d, 'stderr');
    });
    s.onExit((e) => {
      this.#broadcast({ v: 1, type: 'exit', sessionId: this.id, ...e });
    });
    s.onWritable(() => {
      this.#pumpInput();
    });
    s.onClose(({ error }) => {
      this.#finish(this.#endReason ?? (error ? 'error' : 'exit'), error?.code, error?.message);
    });
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Active pause reasons of the session (credit withheld while one is set). */
  get pauseReasons(): HostedPauseReason[] {
    return this.#control === undefined && !this.#ended ? ['detached'] : [];
  }

  /** Pages viewing the session. */
  get views(): { control?: string; readOnly?: string } {
    const out: { control?: string; readOnly?: string } = {};
    if (this.#control) out.control = this.#control.link.pageId;
    if (this.#readOnly) out.readOnly = this.#readOnly.link.pageId;
    return out;
  }

  /** The opening page becomes the controlling view at once (nothing to replay yet). */
  attachOpener(link: PageLink): void {
    this.#control = { link, outstanding: 0 };
  }

  isControl(link: PageLink): boolean {
    return this.#control?.link === link;
  }

  isViewer(link: PageLink): boolean {
    return this.isControl(link) || this.#readOnly?.link === link;
  }

  hasControl(): boolean {
    return this.#control !== undefined;
  }

  hasReadOnly(): boolean {
    return this.#readOnly !== undefined;
  }

  /**
   * Attaches `link` (the caller checked the secret and the busy rules): takes the controlling
   * view over (the old one is told `taken-over`) or adds the read-only view; then the screen is
   * serialized, sent in `attached`, and the live stream follows.
   */
  async attach(link: PageLink, req: number, readOnly: boolean): Promise<void> {
    this.#grace.cancel();
    const view: View = { link, outstanding: 0 };
    if (this.#screen === null) {
      this.#attachStream(link, req, readOnly, view);
      return;
    }
    this.#place(view, readOnly);
    this.#held ??= [];
    const screen = await this.#screen.serialize();
    if (this.#ended) return;
    if (!this.isViewer(link)) return; // detached again while the screen was serialized
    const held = this.#held ?? [];
    const heldBytes = this.#heldBytes;
    this.#held = undefined;
    this.#heldBytes = 0;
    // The screen stands for every byte withheld so far (not the held ones, which follow it).
    const covered = readOnly ? 0 : Math.max(0, this.#session.unconsumed - heldBytes);
    this.#consumedTotal += covered;
    const offset = this.#consumedTotal;
    // Order on the view's port: `attached`, the held output, then whatever the credit below lets
    // the engine read: consume() pumps the engine, which may deliver output synchronously.
    link.send({ v: 1, type: 'attached', req, sessionId: this.id, readOnly, screen, offset });
    for (const h of held) this.#output(h.data, h.stream);
    if (covered > 0 && !this.#ended) this.#session.consume(covered);
  }

  /** Stream session: `attached` at the consumed offset, then every byte not consumed yet. */
  /** `view` becomes the read-only view, or takes the controlling one over (the old is told). */
  #place(view: View, readOnly: boolean): void {
    if (readOnly) {
      this.#readOnly = view;
      return;
    }
    const old = this.#control;
    if (old !== undefined && old.link !== view.link) {
      old.link.send({ v: 1, type: 'detached', sessionId: this.id, reason: 'taken-over' });
    }
    if (this.#readOnly?.link === view.link) this.#readOnly = undefined;
    this.#control = view;
  }

  #attachStream(link: PageLink, req: number, readOnly: boolean, view: View): void {
    this.#place(view, readOnly);
    const offset = this.#consumedTotal;
    link.send({ v: 1, type: 'attached', req, sessionId: this.id, readOnly, screen: '', offset });
    for (const p of this.#pending) this.#post(view, new Uint8Array(p.data).buffer, p.stream);
  }

  /** Removes `link`'s view; the grace timer starts when no view is left. */
  detach(link: PageLink): void {
    if (this.#control?.link === link) this.#control = undefined;
    if (this.#readOnly?.link === link) this.#readOnly = undefined;
    if (this.#control === undefined && this.#readOnly === undefined) this.#startGrace();
  }

  /** A view's page parsed `n` bytes. False when `n` exceeds what that view was sent. */
  consume(link: PageLink, n: number): boolean {
    const view = this.#control?.link === link ? this.#control : this.#readOnly;
    if (view?.link !== link || n > view.outstanding) return false;
    view.outstanding -= n;
    if (view === this.#control && n > 0) {
      this.#session.consume(n);
      this.#consumedTotal += n;
      if (this.#screen === null) this.#dropPending(n);
    }
    return true;
  }

  /** Input from the controlling view; false when it did not fit into the bounded queue. */
  input(data: Uint8Array): boolean {
    if (this.#inputBytes + data.length > this.#o.maxInputBytes) return false;
    this.#input.push(data);
    this.#inputBytes += data.length;
    this.#pumpInput();
    return true;
  }

  /** The session's channel counters, or null (an SSH session, or one that ended). */
  stats(): CoreChannelStats | null {
    return this.#ended ? null : (this.#session.channelStats?.() ?? null);
  }

  resize(cols: number, rows: number): void {
    this.#session.resize(cols, rows);
    this.#screen?.resize(cols, rows);
  }

  close(): void {
    this.#session.close();
  }

  /** Ends the session with `reason` (e.g. the grace expired). */
  end(reason: SessionEndReason): void {
    if (this.#ended) return;
    this.#endReason = reason;
    this.#session.dispose();
    // dispose() fires onClose; a session that already closed does not: finish here too.
    this.#finish(reason);
  }

  #output(data: Uint8Array, stream: 'stdout' | 'stderr'): void {
    if (this.#ended || data.length === 0) return;
    if (this.#held !== undefined) {
      this.#held.push({ data, stream });
      this.#heldBytes += data.length;
      return;
    }
    if (this.#screen !== null) {
      this.#screen.write(data);
    } else {
      this.#pending.push({ data, stream });
      this.#pendingBytes += data.length;
    }
    for (const view of [this.#control, this.#readOnly]) {
      if (view === undefined) continue;
      // The screen model (or the replay queue) keeps `data`; each view gets its own buffer, moved.
      this.#post(view, new Uint8Array(data).buffer, stream);
    }
  }

  #post(view: View, buf: ArrayBuffer, stream: 'stdout' | 'stderr'): void {
    view.outstanding += buf.byteLength;
    view.link.send({ v: 1, type: 'data', sessionId: this.id, data: buf, stream }, [buf]);
    if (view === this.#readOnly && view.outstanding > this.#o.maxReadOnlyLag) {
      this.#readOnly = undefined;
      view.link.send({ v: 1, type: 'detached', sessionId: this.id, reason: 'overrun' });
      if (this.#control === undefined) this.#startGrace();
    }
  }

  /** Stream session: the controlling view consumed the oldest `n` pending bytes. */
  #dropPending(n: number): void {
    let left = n;
    while (left > 0) {
      const head = this.#pending[0];
      if (head === undefined) break;
      if (head.data.length <= left) {
        left -= head.data.length;
        this.#pending.shift();
      } else {
        this.#pending[0] = { data: head.data.subarray(left), stream: head.stream };
        left = 0;
      }
    }
    this.#pendingBytes -= n - left;
  }

  /** Stream session: output bytes kept for a replay (tests, diagnostics). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  #pumpInput(): void {
    let taken = 0;
    while (this.#input.length > 0 && !this.#ended) {
      const head = this.#input[0];
      if (head === undefined) break;
      const n = this.#session.write(head);
      this.#inputBytes -= n;
      taken += n;
      if (n < head.length) {
        this.#input[0] = head.subarray(n);
        break;
      }
      this.#input.shift();
    }
    // The room these bytes took in the queue goes back to the controlling view (view.ts write()).
    if (taken > 0)
      this.#control?.link.send({ v: 1, type: 'writable', sessionId: this.id, room: taken });
  }

  #broadcast(msg: WorkerMessage): void {
    this.#control?.link.send(msg);
    this.#readOnly?.link.send(msg);
  }

  #startGrace(): void {
    if (!this.#ended) this.#grace.start();
  }

  #finish(reason: SessionEndReason, code?: string, message?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#grace.cancel();
    const msg: WorkerMessage = { v: 1, type: 'session-ended', sessionId: this.id, reason };
    if (code !== undefined) msg.code = code;
    if (message !== undefined) msg.message = message;
    this.#broadcast(msg);
    this.#control = undefined;
    this.#readOnly = undefined;
    this.#held = undefined;
    this.#input = [];
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#screen?.dispose();
    this.#o.release();
    this.#o.ended(reason, code, message);
  }
}
