// SPDX-License-Identifier: Apache-2.0
// The worker's screen model of one terminal session: a headless xterm (@xterm/headless) that
// parses the same bytes the page's terminal gets, serialized by @xterm/addon-serialize into the
// escape sequences that redraw the screen and the scrollback (bounded, default 1 000 lines) for a
// page that reattaches (the way VS Code restores terminals after a window reload), and into the
// frames a lagging page gets instead of the stream (hosted-session.ts).
import * as headlessNs from '@xterm/headless';
import * as serializeNs from '@xterm/addon-serialize';

type HeadlessModule = typeof headlessNs;
type SerializeModule = typeof serializeNs;
// Both packages are CommonJS with an ES module build: a bundler gives the named exports, Node's
// ESM loader only a default export.
const cjsDefault = 'default';
const headless: HeadlessModule =
  (headlessNs as unknown as Record<string, HeadlessModule | undefined>)[cjsDefault] ?? headlessNs;
const serialize: SerializeModule =
  (serializeNs as unknown as Record<string, SerializeModule | undefined>)[cjsDefault] ??
  serializeNs;

/** What the host needs of a screen model (tests substitute their own). */
export interface ScreenModel {
  /** Parses `data`; `parsed` runs once it is (after every byte written before it). */
  write(data: Uint8Array, parsed?: () => void): void;
  resize(cols: number, rows: number): void;
  /**
   * Resolves once every byte written so far is parsed, with the screen as escape sequences: the
   * viewport and at most `scrollback` lines above it (default: the model's whole scrollback).
   */
  serialize(scrollback?: number): Promise<string>;
  dispose(): void;
}

/** Default scrollback of a session's screen model, lines. */
export const DEFAULT_SCROLLBACK = 1000;

export function headlessScreen(cols: number, rows: number, scrollback: number): ScreenModel {
  const term = new headless.Terminal({ cols, rows, scrollback, allowProposedApi: true });
  const addon = new serialize.SerializeAddon();
  term.loadAddon(addon);
  let disposed = false;
  return {
    write(data, parsed) {
      if (!disposed) term.write(data, parsed);
    },
    resize(c, r) {
      if (!disposed) term.resize(c, r);
    },
    serialize(lines = scrollback) {
      return new Promise((resolve) => {
        if (disposed) {
          resolve('');
          return;
        }
        // The callback of an empty write runs after everything written before it was parsed.
        term.write('', () => {
          resolve(disposed ? '' : addon.serialize({ scrollback: Math.min(lines, scrollback) }));
        });
      });
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      term.dispose();
    },
  };
}
