// SPDX-License-Identifier: Apache-2.0
// The host's state of one page view of a hosted session (hosted-session.ts): what was posted to
// the page and not reported parsed yet and, for a terminal session, what those bytes stand for
// (an output position the session is credited up to once they are parsed) and whether the view
// gets the stream or frames of the screen.
import type { WorkerMessage } from './protocol.js';

/** A page's end of the channel to the host. */
export interface PageLink {
  readonly pageId: string;
  send(msg: WorkerMessage, transfer?: Transferable[]): void;
}

/** Bytes posted to a view, oldest first: consuming all of them credits up to `end`. */
export interface Mark {
  left: number;
  /** The output position (bytes written to the screen model) the bytes stand for. */
  end: number;
  frame: boolean;
}

export interface View {
  link: PageLink;
  /** Bytes posted to the view and not yet reported parsed. */
  outstanding: number;
  /** Terminal session: what the outstanding bytes stand for. */
  marks: Mark[];
  /** Outstanding bytes of live output (not frames). */
  live: number;
  /** In frames mode (the header of hosted-session.ts). */
  frames: boolean;
  /** A frame is being serialized, or the interval after one has not passed. */
  busy: boolean;
  /** The output position the last frame stood for. */
  framePos: number;
}

const encoder = new TextEncoder();

/** A view that has been sent nothing yet, live. */
export function newView(link: PageLink): View {
  return { link, outstanding: 0, marks: [], live: 0, frames: false, busy: false, framePos: 0 };
}

/**
 * The page parsed the next `n` posted bytes of `view` (at most its outstanding ones): returns the
 * output position they stand for (a frame only once all of it was parsed), or -1 for none.
 */
export function takeParsed(view: View, n: number): number {
  let left = n;
  let pos = -1;
  while (left > 0) {
    const m = view.marks[0];
    if (m === undefined) break;
    const take = Math.min(left, m.left);
    m.left -= take;
    left -= take;
    if (!m.frame) {
      view.live -= take;
      pos = m.end - m.left;
    } else if (m.left === 0) {
      pos = m.end;
    }
    if (m.left === 0) view.marks.shift();
  }
  return pos;
}

/** A frame's bytes: RIS (the page's terminal starts over) and the serialized screen. */
export function frameBuffer(screen: string): ArrayBuffer {
  // encode() returns a view on a fresh buffer of exactly its length: it can be transferred.
  return encoder.encode(`\x1bc${screen}`).buffer;
}
