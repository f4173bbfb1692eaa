// Hand-written declarations of the Emscripten module built from wasm/src/ssh_bindings.cpp
// (Emscripten 3.1.6 has no --emit-tsd). Keep in step with the EMSCRIPTEN_BINDINGS block.
import type { RawSshModule } from './ssh-types.js';

export interface SshModuleOptions {
  wasmBinary?: ArrayBuffer | Uint8Array;
  locateFile?: (path: string, prefix: string) => string;
  print?: (text: string) => void;
  printErr?: (text: string) => void;
  onAbort?: (what: unknown) => void;
}

declare function createManaSsh(options?: SshModuleOptions): Promise<RawSshModule>;
export default createManaSsh;
