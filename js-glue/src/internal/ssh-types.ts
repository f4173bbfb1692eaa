// Types of the mana-ssh module. RawSshEngine / RawSshModule are the embind surface
// (wasm/src/ssh_bindings.cpp), used by src/internal/ssh-engine.ts only; SshEngineHandle /
// SshModule are what it makes of them for src/ssh/ (plain objects per event).

export type SshEngineState =
  | 'handshake'
  | 'hostkey_check'
  | 'auth_list'
  | 'auth_try'
  | 'auth_prompt'
  | 'auth_sign'
  | 'channel_open'
  | 'channel_env'
  | 'channel_pty'
  | 'channel_start'
  | 'running'
  | 'draining'
  | 'closing'
  | 'closed';

export type SshCloseReason =
  | 'none'
  | 'hostkey_rejected'
  | 'auth_failed'
  | 'auth_cancelled'
  | 'key_error'
  | 'channel_failed'
  | 'transport_closed'
  | 'ssh_error'
  | 'buffer_full'
  | 'algorithm_mismatch';

export type SshEngineEvent =
  | { type: 'stateChanged'; from: SshEngineState; to: SshEngineState }
  | {
      type: 'kexDone';
      kex: string;
      hostKey: string;
      cipherClientToServer: string;
      cipherServerToClient: string;
      macClientToServer: string;
      macServerToClient: string;
    }
  | { type: 'hostKey'; keyType: string; algorithm: string; fingerprint: string; blob: Uint8Array }
  | { type: 'authMethods'; methods: string }
  | { type: 'authResult'; method: string; ok: boolean; code: number; message: string }
  | {
      type: 'kbdPrompts';
      name: string;
      instruction: string;
      prompts: { prompt: string; echo: boolean }[];
    }
  /** security-key: sign `data` (the SSH to-be-signed bytes) and answer with signResult(). */
  | { type: 'signRequest'; data: Uint8Array }
  | { type: 'ready' }
  | { type: 'data'; stream: 'stdout' | 'stderr'; data: Uint8Array }
  | { type: 'exit'; code: number | null; signal: string | null; message: string }
  | { type: 'diagnostic'; code: string; detail: string }
  | {
      type: 'closed';
      reason: SshCloseReason;
      code: number;
      message: string;
      methods: string;
      /** algorithm_mismatch: kex | hostkey | cipher | mac, and both sides' lists of it. */
      mismatch: string;
      clientOffer: string;
      serverOffer: string;
    };

export type SshEngineAuth =
  | { type: 'password'; password: string }
  | { type: 'publickey'; privateKey: string; passphrase?: string }
  | { type: 'keyboard-interactive' }
  /** The sk-ecdsa-sha2-nistp256@openssh.com key blob; the signature comes from signResult(). */
  | { type: 'security-key'; publicKey: Uint8Array };

export interface SshEngineConfig {
  username: string;
  auth: SshEngineAuth[];
  hostkeyPref?: string;
  kexPref?: string;
  cipherPref?: string;
  macPref?: string;
  /** RSA user-key signature algorithms (libssh2's LIBSSH2_METHOD_SIGN_ALGO). */
  signPref?: string;
  pty?: boolean;
  termType?: string;
  cols?: number;
  rows?: number;
  env?: [string, string][];
  command?: string;
  keepaliveS?: number;
  outBound?: number;
  inCap?: number;
  appHighWater?: number;
  writeCap?: number;
  channelWindow?: number;
  /** Tunnel mode (jump hosts): a direct-tcpip channel to directHost:directPort, no shell. */
  directHost?: string;
  directPort?: number;
}

/** One wasm SshEngine handle; must be released with delete(). */
export interface SshEngineHandle {
  state(): SshEngineState;
  pushInput(data: Uint8Array): boolean;
  takeInputConsumed(): number;
  transportClosed(): void;
  outputBytes(): number;
  takeOutput(max: number): Uint8Array;
  bytesSent(): number;
  bytesReceived(): number;
  step(now: number): void;
  nextTimeout(): number | null;
  pollEvent(): SshEngineEvent | null;
  hostKeyDecision(accept: boolean): void;
  kbdAnswers(answers: string[] | null): void;
  /** The signature blob for the last signRequest; null cancels (closed auth_cancelled). */
  signResult(signature: Uint8Array | null): void;
  write(data: Uint8Array): number;
  writeRoom(): number;
  writeQueued(): number;
  consume(n: number): void;
  unconsumed(): number;
  resize(cols: number, rows: number): void;
  signal(name: string): boolean;
  sendEof(): void;
  close(): void;
  delete(): void;
  isDeleted(): boolean;
}

export interface SshModule {
  SshEngine: new (config: SshEngineConfig) => SshEngineHandle;
  liveEngines(): number;
  /** kex | hostkey | cipher | mac: the names this build of libssh2 can negotiate. */
  supportedAlgorithms(kind: string): string[];
}

/**
 * The embind class itself. Per-chunk calls carry numbers only: bytes go in through
 * inputBuffer(n) (a heap address) and come out as address + length in the Float64 fields at
 * fields(), valid until the next takeOutput() / pollEvent(); see ssh_bindings.cpp.
 */
export interface RawSshEngine {
  state(): SshEngineState;
  inputBuffer(n: number): number;
  fields(): number;
  pushInput(n: number): boolean;
  takeInputConsumed(): number;
  transportClosed(): void;
  outputBytes(): number;
  /** Moves up to max bytes into the output buffer; fields() [0] address, [1] length. */
  takeOutput(max: number): number;
  bytesSent(): number;
  bytesReceived(): number;
  step(now: number): void;
  nextTimeout(): number | null;
  /** EventKind of ssh_bindings.cpp: 0 none, 1 data, 2 other (see eventDetail()). */
  pollEvent(): number;
  eventDetail(): SshEngineEvent | null;
  hostKeyDecision(accept: boolean): void;
  kbdAnswers(answers: string[] | null): void;
  /** The signature blob for the last signRequest; null cancels (closed auth_cancelled). */
  signResult(signature: Uint8Array | null): void;
  write(n: number): number;
  writeRoom(): number;
  writeQueued(): number;
  consume(n: number): void;
  unconsumed(): number;
  resize(cols: number, rows: number): void;
  signal(name: string): boolean;
  sendEof(): void;
  close(): void;
  delete(): void;
  isDeleted(): boolean;
}

/** The Emscripten module object (createManaSsh's result). */
export interface RawSshModule {
  SshEngine: new (config: SshEngineConfig) => RawSshEngine;
  liveEngines(): number;
  /** kex | hostkey | cipher | mac -> comma-separated names ('' for another kind). */
  supportedAlgorithms(kind: string): string;
  /** The heap views; replaced when memory grows, so read them after every call into wasm. */
  HEAPU8: Uint8Array;
  HEAPF64: Float64Array;
}
