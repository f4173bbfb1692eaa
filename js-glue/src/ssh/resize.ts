// SPDX-License-Identifier: Apache-2.0
// Terminal sizes coalesced to at most one window-change per animation frame (a 16 ms timer where
// there is no requestAnimationFrame): a window drag resizes the pty once per frame, not per pixel.

export class ResizeCoalescer {
  readonly #apply: (cols: number, rows: number) => void;
  #timer: ReturnType<typeof setTimeout> | number | undefined;
  #usesRaf = false;
  #pending: { cols: number; rows: number } | undefined;

  /** `apply` gets the latest size once per frame. */
  constructor(apply: (cols: number, rows: number) => void) {
    this.#apply = apply;
  }

  request(cols: number, rows: number): void {
    this.#pending = { cols: Math.min(cols, 10000), rows: Math.min(rows, 10000) };
    if (this.#timer !== undefined) return;
    const raf = (globalThis as { requestAnimationFrame?: (cb: () => void) => number })
      .requestAnimationFrame;
    const flush = () => {
      this.#timer = undefined;
      const size = this.#pending;
      this.#pending = undefined;
      if (size !== undefined) this.#apply(size.cols, size.rows);
    };
    if (typeof raf === 'function') {
      this.#usesRaf = true;
      this.#timer = raf(flush);
    } else {
      this.#usesRaf = false;
      this.#timer = setTimeout(flush, 16);
    }
  }

  cancel(): void {
    if (this.#timer !== undefined) {
      if (this.#usesRaf) {
        (globalThis as { cancelAnimationFrame?: (h: number) => void }).cancelAnimationFrame?.(
          this.#timer as number,
        );
      } else {
        clearTimeout(this.#timer as ReturnType<typeof setTimeout>);
      }
    }
    this.#timer = undefined;
  }
}
