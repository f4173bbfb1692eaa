// SPDX-License-Identifier: Apache-2.0
// The typed error of a failed `open` across the page <-> worker boundary: the worker describes the
// session's error (toFailure: class name, code, origin, message and the fields its class carries)
// and the page rebuilds the same class (fromFailure), so `e instanceof SshAuthError` and `e.code`
// mean the same as with an in-page SshSession. Only known classes are rebuilt; nothing else of the
// error (its cause, its stack) crosses.
import {
  AuthError,
  ChannelOpenError,
  ClosedError,
  ConnectionTimeoutError,
  InvalidStateError,
  ManaError,
  PolicyError,
  ProtocolError,
  ResumeError,
  TransportError,
  type ManaErrorInit,
} from '../errors.js';
import { HostKeyError, SessionLostError, SshAuthError, SshError } from '../ssh/errors.js';
import { SecurityKeyError } from '../ssh/security-key.js';
import { limits, type WireFailure } from './protocol.js';

/** Classes rebuilt from their name and ManaErrorInit alone. */
const plain: Record<string, new (message: string, init: ManaErrorInit) => ManaError> = {
  AuthError,
  ChannelOpenError,
  ClosedError,
  ConnectionTimeoutError,
  InvalidStateError,
  PolicyError,
  ProtocolError,
  ResumeError,
  TransportError,
};

/** The description of `e` (a ManaError) for an `error` message; undefined for anything else. */
export function toFailure(e: unknown): WireFailure | undefined {
  if (!(e instanceof ManaError)) return undefined;
  const f: WireFailure = {
    name: e.name.slice(0, 64),
    code: e.code.slice(0, 64),
    origin: e.origin,
    message: e.message.slice(0, limits.maxText),
  };
  if (e instanceof SshError || e instanceof SshAuthError) f.sshCode = e.sshCode | 0;
  if (e instanceof SshAuthError) f.methods = e.methods.slice(0, 16).map((m) => m.slice(0, 64));
  if (e instanceof HostKeyError) f.hostKey = { ...e.hostKey };
  if (e.wsCode !== undefined) f.wsCode = e.wsCode;
  if (e.appCode !== undefined) f.appCode = e.appCode;
  return f;
}

/** The error `f` describes, of the same class; undefined for a class the page does not rebuild. */
export function fromFailure(f: WireFailure): ManaError | undefined {
  const init: ManaErrorInit = { code: f.code, origin: f.origin };
  if (f.wsCode !== undefined) init.wsCode = f.wsCode;
  if (f.appCode !== undefined) init.appCode = f.appCode;
  const ssh = { ...init, sshCode: f.sshCode ?? 0 };
  switch (f.name) {
    case 'SshAuthError':
      return new SshAuthError(f.message, { ...ssh, methods: f.methods ?? [] });
    case 'SecurityKeyError':
      return new SecurityKeyError(f.message, { ...ssh, methods: f.methods ?? [] });
    case 'HostKeyError':
      return f.hostKey === undefined
        ? new SshError(f.message, ssh)
        : new HostKeyError(f.message, { ...ssh, hostKey: f.hostKey });
    case 'SshError':
      return new SshError(f.message, ssh);
    case 'SessionLostError':
      return new SessionLostError(f.message, ssh);
    default: {
      const cls = Object.hasOwn(plain, f.name) ? plain[f.name] : undefined;
      return cls === undefined ? undefined : new cls(f.message, init);
    }
  }
}
