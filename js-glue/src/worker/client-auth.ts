// SPDX-License-Identifier: Apache-2.0
// The auth of ManaWorkerClient.openSession as it crosses to the worker, and the page's answers to
// the worker's keyboard-interactive rounds and security-key signatures (worker/client.ts).
import { invalidArgument } from '../errors.js';
import type { HostKeyInfo } from '../ssh/errors.js';
import {
  SecurityKeyError,
  signWithSecurityKey,
  type SecurityKeyCredential,
} from '../ssh/security-key.js';
import type {
  KeyboardInteractiveHandler,
  SecurityKeySigner,
  SshJumpHost,
  SshSessionOptions,
} from '../ssh/types.js';
import {
  limits,
  type WireAuthMethod,
  type WireJumpHost,
  type WireSessionOptions,
  type WorkerMessage,
} from './protocol.js';

type Verify = (info: HostKeyInfo) => boolean | Promise<boolean>;

/**
 * `via` as it crosses to the worker, and each bastion's hostKey.verify and keyboard-interactive
 * handler (by hop; they stay in the page). Refuses what the worker cannot run: a security key on
 * a bastion, a `knownHosts` of its own (the worker keeps host keys in memory), more than 4
 * bastions.
 */
export function wireVia(via: SshJumpHost | SshJumpHost[]): {
  via: WireJumpHost[];
  verifiers: (Verify | undefined)[];
  kbd: (KeyboardInteractiveHandler | undefined)[];
} {
  const hops = Array.isArray(via) ? via : [via];
  if (hops.length === 0 || hops.length > 4) {
    throw invalidArgument('openSession: via takes 1..4 jump hosts');
  }
  const verifiers: (Verify | undefined)[] = [];
  const handlers: (KeyboardInteractiveHandler | undefined)[] = [];
  const wire = hops.map((h, i): WireJumpHost => {
    const { auth, kbd, securityKey } = wireAuth(h.auth);
    handlers.push(kbd);
    if (securityKey !== undefined) {
      throw invalidArgument(
        `openSession: via[${i}]: a security key on a bastion is not supported by the worker`,
      );
    }
    if (h.knownHosts !== undefined) {
      throw invalidArgument(
        `openSession: via[${i}].knownHosts: the worker keeps host keys in memory; use hostKey.verify`,
      );
    }
    const out: WireJumpHost = {
      target: { host: h.target.host, port: h.target.port },
      username: h.username,
      auth: (Array.isArray(auth) ? auth : [auth]) as WireJumpHost['auth'],
    };
    if (h.algorithms !== undefined) out.algorithms = h.algorithms;
    if (h.ciphers !== undefined) out.ciphers = h.ciphers;
    if (h.keepaliveMs !== undefined) out.keepaliveMs = h.keepaliveMs;
    if (h.timeoutMs !== undefined) out.timeoutMs = h.timeoutMs;
    const verify = h.hostKey?.verify;
    if (verify !== undefined) out.verifyHostKey = true;
    verifiers.push(verify);
    return out;
  });
  return { via: wire, verifiers, kbd: handlers };
}

/** The page's signer of a security key: the method's `sign`, else navigator.credentials here. */
export interface PageSigner {
  credential: SecurityKeyCredential;
  sign: SecurityKeySigner;
}

/**
 * The auth of openSession as it crosses to the worker, the handler of its first
 * keyboard-interactive method (which answers every round, as in-page) and the signer of its first
 * securityKey method (which signs, as in-page). Throws invalid_argument as in-page for a method
 * that is none of the four, and for more than 8 methods.
 */
export function wireAuth(auth: SshSessionOptions['auth']): {
  auth: WireSessionOptions['auth'];
  kbd: KeyboardInteractiveHandler | undefined;
  securityKey: PageSigner | undefined;
} {
  const methods: unknown[] = Array.isArray(auth) ? auth : [auth];
  const bad = () =>
    invalidArgument(
      'openSession: auth needs {password}, {privateKey}, {keyboardInteractive} or {securityKey}',
    );
  if (methods.length === 0) throw bad();
  if (methods.length > limits.maxAuthMethods) {
    throw invalidArgument(`openSession: at most ${limits.maxAuthMethods} auth methods`);
  }
  let kbd: KeyboardInteractiveHandler | undefined;
  let securityKey: PageSigner | undefined;
  const wire = methods.map((x): WireAuthMethod => {
    if (typeof x !== 'object' || x === null) throw bad();
    const m = x as Partial<Record<string, unknown>>;
    if (typeof m.password === 'string') return { password: m.password };
    if (typeof m.privateKey === 'string') {
      return typeof m.passphrase === 'string'
        ? { privateKey: m.privateKey, passphrase: m.passphrase }
        : { privateKey: m.privateKey };
    }
    if (typeof m.keyboardInteractive === 'function') {
      kbd ??= m.keyboardInteractive as KeyboardInteractiveHandler;
      return { keyboardInteractive: true };
    }
    if (typeof m.securityKey === 'object' && m.securityKey !== null) {
      const credential = { ...(m.securityKey as SecurityKeyCredential) };
      const sign = typeof m.sign === 'function' ? (m.sign as SecurityKeySigner) : undefined;
      securityKey ??= { credential, sign: sign ?? signWithSecurityKey };
      return { securityKey: credential };
    }
    throw bad();
  });
  // One method travels as one method (what workers before keyboard-interactive understand).
  return {
    auth: !Array.isArray(auth) && wire[0] !== undefined ? wire[0] : wire,
    kbd,
    securityKey,
  };
}

/**
 * The page's answer to a worker's `sign`: the signature blob, or null with the SecurityKeyError's
 * code and message (any other failure: `security_key_unavailable`).
 */
export async function runSign(
  signer: PageSigner | undefined,
  msg: Extract<WorkerMessage, { type: 'sign' }>,
): Promise<{ signature: Uint8Array | null; code?: string; message?: string }> {
  if (signer === undefined) {
    return {
      signature: null,
      code: 'security_key_unavailable',
      message: 'no security key for this open',
    };
  }
  try {
    return { signature: await signer.sign(signer.credential, new Uint8Array(msg.data)) };
  } catch (e) {
    return e instanceof SecurityKeyError
      ? { signature: null, code: e.code, message: e.message.slice(0, limits.maxText) }
      : {
          signature: null,
          code: 'security_key_unavailable',
          message: `the security key did not sign: ${String(e)}`.slice(0, limits.maxText),
        };
  }
}

/** A handler's answers if they are what the round asked for (as in-page), else null (cancel). */
export async function runKbd(
  handler: KeyboardInteractiveHandler | undefined,
  msg: Extract<WorkerMessage, { type: 'kbd' }>,
): Promise<string[] | null> {
  if (handler === undefined) return null;
  try {
    const a: unknown = await handler(
      msg.prompts.map((p) => ({ prompt: p.prompt, echo: p.echo })),
      { name: msg.name, instruction: msg.instruction },
    );
    const ok =
      Array.isArray(a) &&
      a.length === msg.prompts.length &&
      a.every((x) => typeof x === 'string' && x.length <= limits.maxSecretText);
    return ok ? (a as string[]) : null;
  } catch {
    return null;
  }
}

/**
 * What this page answers for one open (by the open's request number): host keys and
 * keyboard-interactive rounds of the target and of each bastion (by hop), and the signatures of
 * the target's security key.
 */
export interface OpenAnswers {
  verify: { target: Verify | undefined; hops: (Verify | undefined)[] };
  kbd: {
    target: KeyboardInteractiveHandler | undefined;
    hops: (KeyboardInteractiveHandler | undefined)[];
  };
  signer: PageSigner | undefined;
}

/**
 * openSession's SSH options as the `open` message carries them, and what this page answers for
 * the open. Throws invalid_argument, before anything is sent, for what the worker (the features
 * of its `ready`) cannot run: never dropped silently (an older worker would open the session to
 * `target` directly, or without a signer).
 */
export function wireSession(
  options: SshSessionOptions,
  worker: { via: boolean; securityKey: boolean },
): { session: WireSessionOptions; answers: OpenAnswers } {
  const { auth, kbd, securityKey } = wireAuth(options.auth);
  if (securityKey !== undefined && !worker.securityKey) {
    throw invalidArgument(
      'openSession: this session worker (an older release) cannot sign with a security key',
    );
  }
  const via = options.via !== undefined ? wireVia(options.via) : undefined;
  if (via !== undefined && !worker.via) {
    throw invalidArgument('openSession: this session worker (an older release) has no `via`');
  }
  const session: WireSessionOptions = {
    target: options.target,
    username: options.username,
    auth,
  };
  if (options.term) session.term = options.term;
  if (options.command !== undefined) session.command = options.command;
  if (options.keepaliveMs !== undefined) session.keepaliveMs = options.keepaliveMs;
  if (options.timeoutMs !== undefined) session.timeoutMs = options.timeoutMs;
  if (options.ciphers !== undefined) session.ciphers = options.ciphers;
  if (options.algorithms !== undefined) session.algorithms = options.algorithms;
  if (via !== undefined) session.via = via.via;
  const verify = options.hostKey?.verify;
  if (verify) session.verifyHostKey = true;
  return {
    session,
    answers: {
      verify: { target: verify, hops: via?.verifiers ?? [] },
      kbd: { target: kbd, hops: via?.kbd ?? [] },
      signer: securityKey,
    },
  };
}
