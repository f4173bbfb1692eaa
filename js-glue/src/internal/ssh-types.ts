// Types of the embind surface of the mana-ssh module (wasm/src/ssh_bindings.cpp). Only
// src/internal/ and src/ssh/ see these.

export type SshEngineState =
  | 'handshake'
  | 'hostkey_check'
  | 'auth_list'
  | 'auth_try'
  | 'auth_prompt'
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
  | 'buffer_full';

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
  | { type: 'ready' }
  | { type: 'data'; stream: 'stdout' | 'stderr'; data: Uint8Array }
  | { type: 'exit'; code: number | null; signal: string | null; message: string }
  | { type: 'diagnostic'; code: string; detail: string }
  | { type: 'closed'; reason: SshCloseReason; code: number; message: string; methods: string };

export type SshEngineAuth =
  | { type: 'password'; password: string }
  | { type: 'publickey'; privateKey: string; passphrase?: string }
  | { type: 'keyboard-interactive' };

export interface SshEngineConfig {
  username: string;
  auth: SshEngineAuth[];
  hostkeyPref?: string;
  kexPref?: string;
  cipherPref?: string;
  macPref?: string;
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
}
