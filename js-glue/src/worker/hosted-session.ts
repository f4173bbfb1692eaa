// SPDX-License-Identifier: Apache-2.0
// One SSH session kept by the worker host (host.ts): the session, its screen model, the views
// attached to it (at most one controlling view and one read-only view) and its credit.
//
// Credit: the SshSession runs in flow 'manual' and is credited (consume) only for bytes its
// controlling view stands for. While no controlling view is attached nothing is consumed (pause
// reason `detached`): libssh2 stops reading the SSH channel at the session's high-water mark, so
// mana credit stops, the gateway stops reading from sshd and TCP backpressure holds sshd. A view
// that reattaches gets the serialized screen instead of the withheld bytes, which are then
// credited at once.
//
// A terminal session (with a screen model) feeds each view in one of two modes:
//   - live: output is transferred as it comes; the controlling view's page credits it once its
//     xterm parsed it (consume);
//   - frames: a page that has more than `frameLagBytes` of live output unparsed stops getting the
//     stream (mosh's idea: the screen, not the history, is what must be current). It gets frames
//     instead: RIS and the serialized viewport of the screen model, each sent once the page parsed
//     the one before (at most one per `frameIntervalMs`). While the controlling view is in frames
//     the screen model stands for it: output is credited once the model parsed it, so a flood runs
//     at the worker's pace and the page's main thread stays free for keys. When the model has
//     nothing new since the last frame, a last frame with the scrollback goes out and the view is
//     live again.
// Rules (checked by the code):
//   1. A byte is credited at most once, in order: `#credited` only grows, up to `#written`.
//   2. A frame is posted only when its view has nothing outstanding, and at most one is being
//      serialized per view; it stands for every byte written to the model before it was taken.
//   3. A view in frames gets no live output; its page's buffer holds at most `frameLagBytes` of
//      live output plus one frame.
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
import { frameBuffer, newView, takeParsed, type PageLink, type View } from './view-state.js';

export type { PageLink } from './view-state.js';

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
  /** Stream session: bytes a read-only view may lag behind before it is dropped. */
  maxReadOnlyLag: number;
  /** Terminal session: live bytes a view may have unparsed before it gets frames instead. */
  frameLagBytes: number;
  /** Terminal session: least time between two frames of a view, ms (0: as soon as parsed). */
  frameIntervalMs: number;
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
  /** Output bytes credited to the session so far (consumed, or stood for by the screen). */
  #credited = 0;
  /** Terminal session: output bytes written to the screen model, and parsed by it. */
  #written = 0;
  #parsed = 0;
  #control: View | undefined;
  #readOnly: View | undefined;
  /** Output that arrived while a view was being attached (the screen is being serialized). */
  #held: { data: Uint8Array; stream: 'stdout' | 'stderr' }[] | undefined;
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
    this.#control = newView(link);
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
    const view = newView(link);
    if (this.#screen === null) {
      this.#attachStream(link, req, readOnly, view);
      return;
    }
    this.#place(view, readOnly);
    this.#held ??= [];
    // Output is held (not written to the model) until the screen was sent: it stands for
    // exactly the bytes written so far.
    const offset = this.#written;
    const screen = await this.#screen.serialize();
    if (this.#ended) return;
    if (!this.isViewer(link)) return; // detached again while the screen was serialized
    const held = this.#held ?? [];
    this.#held = undefined;
    view.framePos = offset;
    // Order on the view's port: `attached`, the held output, then whatever the credit below lets
    // the engine read: consume() pumps the engine, which may deliver output synchronously.
    link.send({ v: 1, type: 'attached', req, sessionId: this.id, readOnly, screen, offset });
    for (const h of held) this.#output(h.data, h.stream);
    // The screen stands for every byte withheld so far (not the held ones, which follow it).
    if (!readOnly) this.#creditTo(offset);
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
    const offset = this.#credited;
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
    if (this.#screen === null) {
      if (view === this.#control && n > 0) {
        this.#session.consume(n);
        this.#credited += n;
        this.#dropPending(n);
      }
      return true;
    }
    const pos = takeParsed(view, n);
    if (view === this.#control && pos >= 0) this.#creditTo(pos);
    this.#kick(view);
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
      return;
    }
    if (this.#screen === null) {
      this.#pending.push({ data, stream });
      this.#pendingBytes += data.length;
      for (const view of [this.#control, this.#readOnly]) {
        // The replay queue keeps `data`; each view gets its own buffer, moved.
        if (view !== undefined) this.#post(view, new Uint8Array(data).buffer, stream);
      }
      return;
    }
    this.#written += data.length;
    const end = this.#written;
    this.#screen.write(data, () => {
      this.#parsedTo(end);
    });
    for (const view of [this.#control, this.#readOnly]) {
      if (view !== undefined) this.#feed(view, data, end, stream);
    }
  }

  /** Terminal session: live output to `view`, or frames once its page lags (see the header). */
  #feed(view: View, data: Uint8Array, end: number, stream: 'stdout' | 'stderr'): void {
    if (!view.frames && view.live + data.length > this.#o.frameLagBytes) {
      view.frames = true;
      // The screen model stands for the controlling view from now on: what it parsed is credited.
      if (view === this.#control) this.#creditTo(this.#parsed);
    }
    if (view.frames) {
      this.#kick(view);
      return;
    }
    // The screen model keeps `data`; each view gets its own buffer, moved.
    view.marks.push({ left: data.length, end, frame: false });
    view.live += data.length;
    this.#post(view, new Uint8Array(data).buffer, stream);
  }

  /** The screen model parsed the output up to `end`. */
  #parsedTo(end: number): void {
    this.#parsed = end;
    if (this.#control?.frames === true) this.#creditTo(end);
  }

  /** Credits the session up to output position `pos` (rule 1). */
  #creditTo(pos: number): void {
    const n = Math.min(pos, this.#written) - this.#credited;
    if (n <= 0 || this.#ended) return;
    this.#credited += n;
    this.#session.consume(n);
  }

  /** Sends `view` its next frame if it is in frames mode and may get one now (rule 2). */
  #kick(view: View): void {
    if (!view.frames || view.busy || view.outstanding > 0 || this.#ended) return;
    view.busy = true;
    void this.#frame(view);
  }

  async #frame(view: View): Promise<void> {
    const screen = this.#screen;
    if (screen === null) return;
    const pos = this.#written;
    // Nothing new since the last frame: the last one, with the scrollback, and live again.
    const last = pos === view.framePos;
    const text = await screen.serialize(last ? undefined : 0);
    if (this.#ended || (view !== this.#control && view !== this.#readOnly)) return;
    const buf = frameBuffer(text);
    view.framePos = pos;
    view.marks.push({ left: buf.byteLength, end: pos, frame: true });
    if (last && this.#written === pos) view.frames = false;
    this.#post(view, buf, 'stdout');
    const again = () => {
      view.busy = false;
      this.#kick(view);
    };
    if (this.#o.frameIntervalMs <= 0) {
      again();
      return;
    }
    // Called unbound: a browser's setTimeout throws `Illegal invocation` with another `this`.
    const set = this.#o.timers?.set ?? setTimeout;
    set(again, this.#o.frameIntervalMs);
  }

  #post(view: View, buf: ArrayBuffer, stream: 'stdout' | 'stderr'): void {
    view.outstanding += buf.byteLength;
    view.link.send({ v: 1, type: 'data', sessionId: this.id, data: buf, stream }, [buf]);
    if (
      this.#screen === null &&
      view === this.#readOnly &&
      view.outstanding > this.#o.maxReadOnlyLag
    ) {
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
