// The load-once-and-share logic of the two Emscripten modules (core.ts: the protocol core,
// ssh.ts: the SSH engine): the first call's options decide how the module loads, later calls get
// the same promise, and a failed load may be retried. A host without fetch for file paths (Node)
// registers a wasm source once (setWasmSource, used by the `@mana/websocket/node` entry): a load
// that names neither wasmBinary nor locateFile then reads the bytes from it.

/** How to load an Emscripten module: its .wasm bytes, or where to fetch the .wasm from. */
export interface ModuleLoadOptions {
  /** The bytes of the .wasm (Node, tests, or an app that fetches them itself). */
  wasmBinary?: ArrayBuffer | Uint8Array;
  /** Map the .wasm file name to a URL (e.g. a CDN path). */
  locateFile?: (path: string, prefix: string) => string;
}

export interface SharedModule<M> {
  /** Loads (once) and returns the module. */
  load(options?: ModuleLoadOptions): Promise<M>;
  /** The pending or loaded module; undefined before the first load and after a failed one. */
  current(): Promise<M> | undefined;
}

/** Reads a .wasm of the package by file name (e.g. `mana-core.wasm`). */
export type WasmSource = (file: string) => Promise<ArrayBuffer | Uint8Array>;
let wasmSource: WasmSource | undefined;

/** @internal Where loads without wasmBinary / locateFile read the .wasm (Node entry). */
export function setWasmSource(source: WasmSource): void {
  wasmSource = source;
}

/** A loader that calls `create` (the Emscripten factory for `file`) at most once at a time. */
export function sharedModule<M>(
  file: string,
  create: (options: ModuleLoadOptions) => Promise<M>,
): SharedModule<M> {
  let shared: Promise<M> | undefined;
  return {
    load(options = {}) {
      if (shared === undefined) {
        const source = wasmSource;
        const p =
          options.wasmBinary === undefined &&
          options.locateFile === undefined &&
          source !== undefined
            ? source(file).then((wasmBinary) => create({ wasmBinary }))
            : create({
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
    },
    current: () => shared,
  };
}
