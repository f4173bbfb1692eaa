// Hand-written declarations of the Emscripten module built from wasm/src/bindings.cpp
// (Emscripten 3.1.6 has no --emit-tsd). Keep in step with the EMSCRIPTEN_BINDINGS block.
import type { RawCoreModule } from './core-types.js';

export interface CoreModuleOptions {
  wasmBinary?: ArrayBuffer | Uint8Array;
  locateFile?: (path: string, prefix: string) => string;
  print?: (text: string) => void;
  printErr?: (text: string) => void;
  onAbort?: (what: unknown) => void;
}

declare function createManaCore(options?: CoreModuleOptions): Promise<RawCoreModule>;
export default createManaCore;
