// SSH-level errors of SshSession. All extend ManaError (code, origin); the SSH engine's own code
// (libssh2's error number, 0 when none) is `sshCode`.
import { AuthError, ManaError, nameErrorClasses, type ManaErrorInit } from '../errors.js';

export interface SshErrorInit extends ManaErrorInit {
  /** libssh2's error code (negative), 0 when the failure did not come from libssh2. */
  sshCode?: number;
}

/** An SSH session failed: key exchange, channel refused, libssh2 error, transport gone. */
export class SshError extends ManaError {
  readonly sshCode: number;
  constructor(message: string, init: SshErrorInit) {
    super(message, init);
    this.sshCode = init.sshCode ?? 0;
  }
}

/**
 * SSH authentication failed (`code`: auth_failed, auth_cancelled, key_error, no_methods).
 * `methods` are the methods the server allowed (e.g. ['publickey', 'password']). An AuthError, so
 * one `instanceof AuthError` covers gateway (JWT) and SSH refusals.
 */
export class SshAuthError extends AuthError {
  readonly methods: string[];
  readonly sshCode: number;
  constructor(message: string, init: SshErrorInit & { methods: string[] }) {
    super(message, init);
    this.methods = init.methods;
    this.sshCode = init.sshCode ?? 0;
  }
}

/** The kinds of SSH algorithm lists (SshSessionOptions.algorithms). */
export type SshAlgorithmKind = 'kex' | 'hostKey' | 'cipher' | 'mac';

/**
 * SSH algorithm choice failed. `code` `algorithm_mismatch`: the server offers no algorithm of
 * `kind` that this client offers (both lists are here; an old server may need
 * `algorithms: 'legacy'`). `code` `unsupported_algorithm`: `algorithms` names something this build
 * cannot negotiate (`unsupported`); raised before anything was sent.
 */
export class SshAlgorithmError extends SshError {
  readonly kind: SshAlgorithmKind;
  /** This client's list of `kind`. */
  readonly clientOffer: string[];
  /** algorithm_mismatch: the server's list of `kind`; else empty. */
  readonly serverOffer: string[];
  /** unsupported_algorithm: the names this build does not support; else empty. */
  readonly unsupported: string[];
  constructor(
    message: string,
    init: SshErrorInit & {
      kind: SshAlgorithmKind;
      clientOffer?: string[];
      serverOffer?: string[];
      unsupported?: string[];
    },
  ) {
    super(message, init);
    this.kind = init.kind;
    this.clientOffer = init.clientOffer ?? [];
    this.serverOffer = init.serverOffer ?? [];
    this.unsupported = init.unsupported ?? [];
  }
}

/** What the host key check saw (also passed to hostKey.verify). */
export interface HostKeyInfo {
  host: string;
  port: number;
  /** Key type, e.g. `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`. */
  algorithm: string;
  /** OpenSSH format: `SHA256:` + base64 without padding. */
  fingerprint: string;
  /** Against the stored key of host:port. */
  known: 'match' | 'new' | 'changed';
}

/**
 * The server's host key was refused: it differs from the stored one (`code` hostkey_changed, a
 * hard failure no callback can override) or verify() said no (hostkey_rejected). Nothing was sent
 * to the server after the key exchange.
 */
export class HostKeyError extends SshError {
  readonly hostKey: HostKeyInfo;
  constructor(message: string, init: SshErrorInit & { hostKey: HostKeyInfo }) {
    super(message, init);
    this.hostKey = init.hostKey;
  }
}

/**
 * The SSH session is gone for good because its transport could not be resumed (the connection
 * closed, gave up resuming, or the page was reloaded: SSH keys live in the page's memory). Open a
 * new session; SshSession.lostSessions() lists what was attached before a reload.
 */
export class SessionLostError extends SshError {}

/** The RFC 4254 (5.1) reasons a server gives for refusing a channel open. */
export type SshOpenFailureReason =
  | 'administratively_prohibited'
  | 'connect_failed'
  | 'unknown_channel_type'
  | 'resource_shortage'
  | 'unknown';

/**
 * A bastion refused the `direct-tcpip` channel to the next hop (`code` tunnel_refused; `sshLayer`
 * names the bastion). `reasonCode` is the server's SSH_MSG_CHANNEL_OPEN_FAILURE reason (1
 * administratively prohibited, e.g. `AllowTcpForwarding no` or a `PermitOpen` miss; 2 connect
 * failed, e.g. nothing listens there; 3 unknown channel type; 4 resource shortage; 0 when the
 * server gave another one).
 */
export class SshTunnelError extends SshError {
  readonly reasonCode: number;
  readonly reason: SshOpenFailureReason;
  /** Where the tunnel was to go (the next hop as the bastion resolves it). */
  readonly to: { host: string; port: number };
  constructor(
    message: string,
    init: SshErrorInit & {
      reasonCode: number;
      reason: SshOpenFailureReason;
      to: { host: string; port: number };
    },
  ) {
    super(message, init);
    this.reasonCode = init.reasonCode;
    this.reason = init.reason;
    this.to = init.to;
  }
}

nameErrorClasses({
  SshError,
  SshAuthError,
  HostKeyError,
  SessionLostError,
  SshAlgorithmError,
  SshTunnelError,
});
