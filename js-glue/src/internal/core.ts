// Loads the Emscripten module (the only file that imports it). One module instance serves every
// Connection of the page (each Connection owns one ClientSession handle); the options of the first
// load decide how it is loaded.
import createManaCore from './mana-core.mjs';
import type { CoreModule } from './core-types.js';

/** How to load the wasm core. In browsers the defaults fetch `mana-core.wasm` next to the module. */
export interface CoreLoadOptions {
  /** The bytes of mana-core.wasm (Node, tests, or an app that fetches them itself). */
  wasmBinary?: ArrayBuffer | Uint8Array;
  /** Map the file name `mana-core.wasm` to a URL (e.g. a CDN path). */
  locateFile?: (path: string, prefix: string) => string;
}

let shared: Promise<CoreModule> | undefined;

export function loadCoreModule(options: CoreLoadOptions = {}): Promise<CoreModule> {
  if (shared === undefined) {
    const p = createManaCore({
      ...(options.wasmBinary !== undefined ? { wasmBinary: options.wasmBinary } : {}),
      ...(options.locateFile !== undefined ? { locateFile: options.locateFile } : {}),
    });
    // A failed load may be retried (e.g. after a network error fetching the .wasm).
    p.catch(() => {
      if (shared === p) shared = undefined;
    });
    shared = p;
  }
  return shared;
}

/** Number of wasm ClientSession handles alive (0 after every Connection was disposed). */
export async function liveCoreSessions(): Promise<number> {
  if (shared === undefined) return 0;
  return (await shared).liveSessions();
}
