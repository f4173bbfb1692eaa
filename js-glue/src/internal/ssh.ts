// Loads the mana-ssh Emscripten module (libssh2 + OpenSSL, ~1 MB of wasm) on first use: the
// dynamic import keeps it out of the bundle of apps that only use the transport. One module
// instance serves every SshSession of the page; the options of the first load decide how.
import type { SshModule } from './ssh-types.js';
import { sharedModule } from './load-module.js';
import { wrapSshModule } from './ssh-engine.js';

/** How to load the SSH engine. In browsers the defaults fetch `mana-ssh.wasm` next to the module. */
export interface SshLoadOptions {
  /** The bytes of mana-ssh.wasm (Node, tests, or an app that fetches them itself). */
  wasmBinary?: ArrayBuffer | Uint8Array;
  /** Map the file name `mana-ssh.wasm` to a URL (e.g. a CDN path). */
  locateFile?: (path: string, prefix: string) => string;
}

const ssh = /* @__PURE__ */ sharedModule<SshModule>('mana-ssh.wasm', (options) =>
  import('./mana-ssh.mjs').then(({ default: createManaSsh }) =>
    createManaSsh(options).then(wrapSshModule),
  ),
);

/** Loads (once) and returns the SSH module; call early to preload it. */
export function loadSshModule(options: SshLoadOptions = {}): Promise<SshModule> {
  return ssh.load(options);
}

/** Number of wasm SshEngine handles alive (0 after every SshSession closed or was disposed). */
export async function liveSshEngines(): Promise<number> {
  const shared = ssh.current();
  if (shared === undefined) return 0;
  return (await shared).liveEngines();
}
