// Loads the Emscripten module (the only file that imports it). One module instance serves every
// Connection of the page (each Connection owns one ClientSession handle); the options of the first
// load decide how it is loaded.
import createManaCore from './mana-core.mjs';
import type { CoreModule } from './core-types.js';
import { wrapCoreModule } from './core-session.js';
import { sharedModule } from './load-module.js';

/** How to load the wasm core. In browsers the defaults fetch `mana-core.wasm` next to the module. */
export interface CoreLoadOptions {
  /** The bytes of mana-core.wasm (Node, tests, or an app that fetches them itself). */
  wasmBinary?: ArrayBuffer | Uint8Array;
  /** Map the file name `mana-core.wasm` to a URL (e.g. a CDN path). */
  locateFile?: (path: string, prefix: string) => string;
}

const core = /* @__PURE__ */ sharedModule<CoreModule>('mana-core.wasm', (options) =>
  createManaCore(options).then(wrapCoreModule),
);

export function loadCoreModule(options: CoreLoadOptions = {}): Promise<CoreModule> {
  return core.load(options);
}

/** Number of wasm ClientSession handles alive (0 after every Connection was disposed). */
export async function liveCoreSessions(): Promise<number> {
  const shared = core.current();
  if (shared === undefined) return 0;
  return (await shared).liveSessions();
}
