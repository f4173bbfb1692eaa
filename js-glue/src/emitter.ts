// xterm-style events: `onX(listener)` registers a listener and returns a DisposableLike
// (xterm's IDisposable: `{ dispose() }`; not named `Disposable`, which would shadow the global
// `Disposable` of TypeScript 5.2+).

export interface DisposableLike {
  dispose(): void;
}

export type Listener<T> = (value: T) => void;
export type EventRegistration<T> = (listener: Listener<T>) => DisposableLike;

export class Emitter<T> {
  #listeners = new Set<Listener<T>>();
  #onListenerError: (error: unknown) => void;

  constructor(onListenerError: (error: unknown) => void = reportListenerError) {
    this.#onListenerError = onListenerError;
  }

  readonly event: EventRegistration<T> = (listener) => {
    // Wrap so the same function registered twice gets two registrations.
    const entry: Listener<T> = (v) => {
      listener(v);
    };
    this.#listeners.add(entry);
    return { dispose: () => void this.#listeners.delete(entry) };
  };

  get size(): number {
    return this.#listeners.size;
  }

  fire(value: T): void {
    for (const l of [...this.#listeners]) {
      try {
        l(value);
      } catch (error) {
        // A throwing listener never breaks the connection's state machine.
        this.#onListenerError(error);
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}

/**
 * Resolves at the next `onWritable` event; rejects with `closedError(false)` at the next `onClose`
 * event, or at once with `closedError(true)` when already `closed` (Channel and SshSession
 * writeAll()).
 */
export function nextWritableOrClose(
  onWritable: EventRegistration<unknown>,
  onClose: EventRegistration<unknown>,
  closed: boolean,
  closedError: (already: boolean) => Error,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (closed) {
      reject(closedError(true));
      return;
    }
    const a = onWritable(() => {
      a.dispose();
      b.dispose();
      resolve();
    });
    const b = onClose(() => {
      a.dispose();
      b.dispose();
      reject(closedError(false));
    });
  });
}

function reportListenerError(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}
