// SPDX-License-Identifier: Apache-2.0
// Why an SSH session ended, as the typed error its onClose reports: from the engine's `closed`
// event (authentication, host key, channel, libssh2 errors) or from the loss of its transport.
import type { ConnectionBase } from '../connection.js';
import { ManaError, type SshLayer } from '../errors.js';
import type { SshEngineEvent } from '../internal/ssh-types.js';
import { kindOfEngine, legacySshAlgorithms } from './algorithms.js';
import {
  SessionLostError,
  SshAlgorithmError,
  SshAuthError,
  SshError,
  SshTunnelError,
  type SshOpenFailureReason,
} from './errors.js';

/**
 * The error of a lost transport: SessionLostError once the connection is closed or disposed (it
 * will not resume), else SshError `transport_closed`.
 */
export function lostError(conn: ConnectionBase, message: string): ManaError {
  const connGone = conn.state === 'closed' || conn.disposed;
  if (connGone) {
    return new SessionLostError(`${message}: the connection could not be resumed`, {
      code: 'session_lost',
      origin: 'local',
      cause: conn.lastError,
    });
  }
  return new SshError(message, { code: 'transport_closed', origin: 'remote' });
}

/** Names the layer of a jump-host session on `error` (unless a deeper layer named itself). */
export function tagLayer(error: ManaError, layer: SshLayer): void {
  if (error.sshLayer !== undefined) return;
  error.sshLayer = layer;
  error.message = `${layer.role} ${layer.host}:${layer.port}: ${error.message}`;
}

/** The error of the session's channel when the gateway refused to open it. */
export function channelRefusedError(target: { host: string; port: number }, e: unknown): ManaError {
  return e instanceof ManaError
    ? e
    : new SshError(`channel to ${target.host}:${target.port} refused`, {
        code: 'channel_refused',
        origin: 'remote',
        cause: e,
      });
}

/** What the mapping needs to know about its session. */
export interface CloseContext {
  username: string;
  /** The HostKeyError of the refused host key. */
  hostKeyError(sshCode: number): ManaError;
  /** Why this side cancelled the authentication (a security key failure), if it did. */
  authError?(): ManaError | undefined;
  /** The error of a lost transport (lostError, or the failure of the bastion carrying it). */
  lost(message: string): ManaError;
  /** Tunnel mode (a bastion of a jump-host session): where its direct-tcpip channel goes. */
  tunnelTo?: { host: string; port: number } | undefined;
}

const openFailures: [RegExp, number, SshOpenFailureReason][] = [
  [/administratively prohibited/u, 1, 'administratively_prohibited'],
  [/connect failed/u, 2, 'connect_failed'],
  [/unknown channel type/u, 3, 'unknown_channel_type'],
  [/resource shortage/u, 4, 'resource_shortage'],
];

/**
 * SshTunnelError of a refused direct-tcpip open. libssh2 reports the server's reason code only in
 * its message ("Channel open failure (connect failed)"; channel.c of 1.11.1), mapped back here.
 */
function tunnelError(
  to: { host: string; port: number },
  ev: Extract<SshEngineEvent, { type: 'closed' }>,
): ManaError {
  const hit = openFailures.find(([re]) => re.test(ev.message));
  const [reasonCode, reason] = hit === undefined ? [0, 'unknown' as const] : [hit[1], hit[2]];
  return new SshTunnelError(
    `the bastion refused the tunnel to ${to.host}:${to.port}: ${reason.replace(/_/gu, ' ')}` +
      ` (reason ${reasonCode}${ev.message !== '' ? `; ${ev.message}` : ''})`,
    { code: 'tunnel_refused', origin: 'remote', sshCode: ev.code, reasonCode, reason, to },
  );
}

/** The error of the engine's `closed` event; undefined for a normal end. */
export function engineCloseError(
  ev: Extract<SshEngineEvent, { type: 'closed' }>,
  ctx: CloseContext,
): ManaError | undefined {
  const detail = ev.message !== '' ? `: ${ev.message}` : '';
  const methods = ev.methods === '' ? [] : ev.methods.split(',');
  const init = { origin: 'remote' as const, sshCode: ev.code };
  switch (ev.reason) {
    case 'none':
      return undefined;
    case 'hostkey_rejected':
      return ctx.hostKeyError(ev.code);
    case 'auth_failed':
      return new SshAuthError(
        `SSH authentication as ${ctx.username} failed (server allows: ${ev.methods || 'none'})${detail}`,
        { ...init, code: 'auth_failed', methods },
      );
    case 'auth_cancelled':
      return (
        ctx.authError?.() ??
        new SshAuthError('keyboard-interactive authentication was cancelled', {
          ...init,
          code: 'auth_cancelled',
          origin: 'local',
          methods,
        })
      );
    case 'key_error':
      return new SshAuthError(`the private key could not be used${detail}`, {
        ...init,
        code: 'key_error',
        origin: 'local',
        methods,
      });
    case 'transport_closed':
      return ctx.lost(`the transport of the SSH session closed${detail}`);
    case 'channel_failed':
      if (ctx.tunnelTo !== undefined) return tunnelError(ctx.tunnelTo, ev);
      return new SshError(`SSH channel refused${detail}`, { ...init, code: 'channel_failed' });
    case 'buffer_full':
      return new SshError(`SSH engine buffer bound exceeded${detail}`, {
        ...init,
        code: 'buffer_full',
        origin: 'local',
      });
    case 'ssh_error':
      return new SshError(`SSH error ${ev.code}${detail}`, { ...init, code: 'ssh_error' });
    case 'algorithm_mismatch':
      return mismatchError(ev, init);
  }
}

const names = { kex: 'key exchange', hostKey: 'host key', cipher: 'cipher', mac: 'MAC' } as const;

/** SshAlgorithmError `algorithm_mismatch`: what the server offered against this client's list. */
function mismatchError(
  ev: Extract<SshEngineEvent, { type: 'closed' }>,
  init: { origin: 'remote'; sshCode: number },
): ManaError {
  const kind = kindOfEngine(ev.mismatch) ?? 'kex';
  const split = (list: string) => (list === '' ? [] : list.split(','));
  const clientOffer = split(ev.clientOffer);
  // Without the extension markers a server lists among its key exchanges (RFC 8308, strict KEX).
  const serverOffer = split(ev.serverOffer).filter((n) => !/^(ext-info-|kex-strict-)/u.test(n));
  // A hint when the preset would have found a common name.
  const legacy = legacySshAlgorithms[kind].some(
    (n) => serverOffer.includes(n) && !clientOffer.includes(n),
  );
  return new SshAlgorithmError(
    `no common ${names[kind]} algorithm with the server: it offers ${serverOffer.join(',') || '(nothing)'}; ` +
      `this client offers ${clientOffer.join(',')}` +
      (legacy ? ` (the server needs a legacy algorithm: algorithms: 'legacy')` : ''),
    { ...init, code: 'algorithm_mismatch', kind, clientOffer, serverOffer },
  );
}
