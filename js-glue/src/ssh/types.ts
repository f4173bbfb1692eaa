// SPDX-License-Identifier: Apache-2.0
// The public types of conn.openSession() and SshSession (options, states, events, metadata).
import type { ManaError } from '../errors.js';
import type { SshLoadOptions } from '../internal/ssh.js';
import type { SshAlgorithms } from './algorithms.js';
import type { HostKeyInfo } from './errors.js';
import type { KnownHostsOption } from './known-hosts.js';
import type { SecurityKeyCredential } from './security-key.js';

export type SshSessionState = 'connecting' | 'authenticating' | 'open' | 'closing' | 'closed';

export interface KeyboardInteractivePrompt {
  prompt: string;
  /** Whether the answer may be shown while typed (false for passwords). */
  echo: boolean;
}
export type KeyboardInteractiveHandler = (
  prompts: KeyboardInteractivePrompt[],
  info: { name: string; instruction: string },
) => string[] | Promise<string[]>;

export type SshAuthMethod =
  | { password: string }
  | { privateKey: string; passphrase?: string }
  | { keyboardInteractive: KeyboardInteractiveHandler }
  /** A security key or passkey through WebAuthn (enrollSecurityKey() made it): no private key
   *  in the page; the browser asks the user to touch the key. `sign` replaces the default
   *  signWithSecurityKey() (navigator.credentials.get() here), e.g. to sign in another realm. */
  | { securityKey: SecurityKeyCredential; sign?: SecurityKeySigner };

/**
 * Signs `data` (the SSH to-be-signed bytes) with `credential` and returns the webauthn signature
 * blob, as signWithSecurityKey() (the default, of the same shape) does; throws (a
 * SecurityKeyError keeps its code) to refuse.
 */
export type SecurityKeySigner = (
  credential: SecurityKeyCredential,
  data: Uint8Array,
) => Promise<Uint8Array>;

export interface SshTermOptions {
  cols: number;
  rows: number;
  /** TERM of the pty. Default `xterm-256color`. */
  type?: string;
  /** Environment for the shell (sshd accepts only what its AcceptEnv allows). */
  env?: Record<string, string>;
}

/**
 * One bastion (jump host) of SshSessionOptions.via. Its SSH session runs in the page like the
 * target's, with its own host key check and algorithms; instead of a shell it opens a
 * `direct-tcpip` channel to the next hop, which carries the next SSH connection.
 */
export interface SshJumpHost {
  /** For the first bastion: the gateway's target; for a later one: as the previous resolves it. */
  target: { host: string; port: number };
  username: string;
  auth: SshAuthMethod | SshAuthMethod[];
  /** This bastion's host key policy (default trust on first use, as for the target). */
  hostKey?: { verify?: (info: HostKeyInfo) => boolean | Promise<boolean> };
  /** Default: the session's knownHosts. */
  knownHosts?: KnownHostsOption;
  /** This bastion's algorithm preferences (not inherited from the session; default secure). */
  algorithms?: SshAlgorithms | 'default' | 'legacy';
  ciphers?: string;
  /** Default 30000; 0 disables. */
  keepaliveMs?: number;
  /** Deadline for this bastion's handshake + authentication + tunnel open. Default: the session's. */
  timeoutMs?: number;
}

export interface SshSessionOptions {
  /** The SSH server. With `via`: host and port as the last bastion reaches it. */
  target: { host: string; port: number };
  username: string;
  /** One method or several, tried in order as the server offers them. */
  auth: SshAuthMethod | SshAuthMethod[];
  /** Host key policy. Default: trust on first use (new keys are stored; a changed key fails). */
  hostKey?: { verify?: (info: HostKeyInfo) => boolean | Promise<boolean> };
  /** Where accepted host keys persist. Default `local` (localStorage; memory when unavailable). */
  knownHosts?: KnownHostsOption;
  /** pty + shell. */
  term?: SshTermOptions;
  /** exec (without a pty unless `term` is given too; stdout and stderr separated). */
  command?: string;
  /** SSH keepalive interval, ms (whole seconds). Default 30000; 0 disables. */
  keepaliveMs?: number;
  /** `auto` (default): output counts as consumed after the onData listeners ran. `manual`: call
   *  consume(n) once the bytes were really processed (e.g. in xterm's write callback). */
  flow?: 'auto' | 'manual';
  /** Unconsumed output at which reading from the SSH channel pauses. Default 512 KiB. */
  highWaterMark?: number;
  /**
   * The SSH channel's receive window, bytes (64 KiB .. 16 MiB): what sshd may send ahead of this
   * client's reads. Default 2 MiB (libssh2's). Under an output flood every byte of it is ahead of
   * a keystroke's echo, so an interactive terminal is snappier with less (the session worker uses
   * 256 KiB for terminals); bulk transfers want the default.
   */
  channelWindow?: number;
  /** Deadline for handshake + authentication + channel start, ms. Default 30000. */
  timeoutMs?: number;
  /**
   * Algorithm preferences: `{kex?, hostKey?, cipher?, mac?}` ordered lists (a kind left out keeps
   * its default), `'default'`, or `'legacy'` (the defaults plus SHA-1 key exchange, `ssh-rsa`,
   * AES-CBC and hmac-sha1 for old servers; each use reported as a `weak_algorithm` diagnostic).
   * Names this build cannot negotiate reject with SshAlgorithmError `unsupported_algorithm`
   * before anything is sent. `defaultSshAlgorithms` / `legacySshAlgorithms` hold the lists.
   */
  algorithms?: SshAlgorithms | 'default' | 'legacy';
  /** Cipher preference (comma separated), the older form of `algorithms.cipher`. */
  ciphers?: string;
  /** How the SSH engine is loaded (first load in the page wins). */
  engine?: SshLoadOptions;
  /**
   * Jump hosts: reach `target` through one bastion or a chain of them (outermost first, at most
   * 4). The gateway connects to the first bastion only; every SSH session of the chain runs in the
   * page, each over a `direct-tcpip` channel of the one before (like OpenSSH's ProxyJump). Errors
   * name their layer in `sshLayer`.
   */
  via?: SshJumpHost | SshJumpHost[];
}

export interface SshSessionInfo {
  kex: string;
  hostKeyAlgorithm: string;
  fingerprint: string;
  cipherClientToServer: string;
  cipherServerToClient: string;
  macClientToServer: string;
  macServerToClient: string;
  authMethod: string;
}

export interface SshSessionStats {
  /** SSH transport bytes received from / sent to the server (encrypted, as on the channel). */
  received: number;
  sent: number;
  /** Output delivered and not consumed yet. */
  unconsumed: number;
  /** Input accepted by write() and not yet taken by the SSH channel. */
  writeQueued: number;
}

export interface SshExitEvent {
  code?: number;
  signal?: string;
}

export interface SshCloseEvent {
  /** Why the session ended; undefined for a normal end (exit, close()). */
  error?: ManaError;
}

/** SSH metadata stored next to the transport's resume token (no secrets). */
export interface SshSessionMetadata extends Partial<SshSessionInfo> {
  host: string;
  port: number;
  username: string;
  channelId: number;
  /** Date.now() when the session opened. */
  openedAt: number;
  /** The bastions of a session opened with `via`, outermost first. */
  via?: { host: string; port: number; username: string }[];
}
