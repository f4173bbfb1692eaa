// SPDX-License-Identifier: Apache-2.0
// The open of an SshSession up to authentication: the negotiated algorithms, and the two questions
// the SSH engine asks its session: whether to trust the server's host key (known hosts: trust on
// first use, a changed key always fails; or the application's hostKey.verify) and the answers to
// keyboard-interactive prompts (the application's handler), and the signature of a security key
// (navigator.credentials.get() over the data to sign: ssh/security-key.ts). Answers go into the
// engine and nowhere else.
import type { SshEngineEvent, SshEngineHandle } from '../internal/ssh-types.js';
import { weakNegotiated } from './algorithms.js';
import type { ManaError } from '../errors.js';
import { HostKeyError, type HostKeyInfo } from './errors.js';
import {
  SecurityKeyError,
  signWithSecurityKey,
  type SecurityKeyCredential,
} from './security-key.js';
import { base64Of, type KnownHosts } from './known-hosts.js';
import type {
  KeyboardInteractiveHandler,
  SshAuthMethod,
  SshSessionInfo,
  SshSessionOptions,
} from './types.js';

/** What the handshake needs from its session. */
export interface HandshakeHost {
  /** The engine; undefined once the session ended (a late answer is dropped). */
  engine(): SshEngineHandle | undefined;
  pump(): void;
  diag(code: string, detail: string): void;
}

/** The host-key decision of one session. */
class HostKeyCheck {
  readonly #target: { host: string; port: number };
  readonly #known: KnownHosts;
  readonly #verify: NonNullable<SshSessionOptions['hostKey']>['verify'];
  readonly #host: HandshakeHost;
  /** The key the server presented (undefined before the key exchange). */
  #info: HostKeyInfo | undefined;
  /** Why the key was refused: it differs from the stored one, or it was not accepted. */
  #verdict: 'changed' | 'rejected' | undefined;

  constructor(
    target: { host: string; port: number },
    known: KnownHosts,
    options: SshSessionOptions,
    host: HandshakeHost,
  ) {
    this.#target = target;
    this.#known = known;
    this.#verify = options.hostKey?.verify;
    this.#host = host;
  }

  /** Decides about the key of a `hostKey` event (at once or when verify() answers). */
  check(ev: Extract<SshEngineEvent, { type: 'hostKey' }>): void {
    const { host, port } = this.#target;
    const key = base64Of(ev.blob);
    const stored = this.#known.get(host, port);
    const known: HostKeyInfo['known'] =
      stored === undefined
        ? 'new'
        : stored.keyType === ev.keyType && stored.key === key
          ? 'match'
          : 'changed';
    const info: HostKeyInfo = {
      host,
      port,
      algorithm: ev.keyType,
      fingerprint: ev.fingerprint,
      known,
    };
    this.#info = info;
    const sent = this.#host.engine()?.bytesSent() ?? 0;
    const decide = (accept: boolean, why: string) => {
      this.#host.diag(
        'ssh_hostkey',
        `${host}:${port} ${ev.keyType} ${ev.fingerprint} ${known} -> ${accept ? 'accepted' : 'rejected'}` +
          ` (${why}; sent=${sent})`,
      );
      if (!accept) this.#verdict = known === 'changed' ? 'changed' : 'rejected';
      else if (known === 'new') this.#known.set(host, port, { keyType: ev.keyType, key });
      this.#host.engine()?.hostKeyDecision(accept);
      this.#host.pump();
    };
    this.#ask(known, info, decide);
  }

  #ask(
    known: HostKeyInfo['known'],
    info: HostKeyInfo,
    decide: (accept: boolean, why: string) => void,
  ): void {
    if (known === 'changed') {
      decide(false, 'the stored key differs');
      return;
    }
    const verify = this.#verify;
    if (verify === undefined) {
      decide(true, known === 'new' ? 'trust on first use' : 'stored key');
      return;
    }
    let answer: boolean | Promise<boolean>;
    try {
      answer = verify(info);
    } catch {
      decide(false, 'verify threw');
      return;
    }
    void Promise.resolve(answer).then(
      (ok) => {
        if (this.#host.engine() !== undefined) decide(ok, 'verify');
      },
      () => {
        if (this.#host.engine() !== undefined) decide(false, 'verify rejected');
      },
    );
  }

  /** The error of a refused host key (the engine closed with `hostkey_rejected`). */
  error(sshCode: number): HostKeyError {
    const hk = this.#info ?? {
      host: this.#target.host,
      port: this.#target.port,
      algorithm: '',
      fingerprint: '',
      known: 'new' as const,
    };
    return this.#verdict === 'changed'
      ? new HostKeyError(
          `host key of ${hk.host}:${hk.port} changed: got ${hk.algorithm} ${hk.fingerprint}, ` +
            'which differs from the stored key (possible man-in-the-middle)',
          { code: 'hostkey_changed', origin: 'local', sshCode, hostKey: hk },
        )
      : new HostKeyError(`host key ${hk.algorithm} ${hk.fingerprint} was not accepted`, {
          code: 'hostkey_rejected',
          origin: 'local',
          sshCode,
          hostKey: hk,
        });
  }
}

/** Answers keyboard-interactive prompts with the first keyboardInteractive method's handler. */
async function answerPrompts(
  ev: Extract<SshEngineEvent, { type: 'kbdPrompts' }>,
  methods: SshAuthMethod[],
  host: HandshakeHost,
): Promise<void> {
  const handler = methods.find(
    (m): m is { keyboardInteractive: KeyboardInteractiveHandler } => 'keyboardInteractive' in m,
  )?.keyboardInteractive;
  let answers: string[] | null = null;
  host.diag('ssh_auth_prompts', `${ev.prompts.length} prompt(s)`);
  try {
    if (handler !== undefined) {
      const a = await handler(
        ev.prompts.map((p) => ({ prompt: p.prompt, echo: p.echo })),
        { name: ev.name, instruction: ev.instruction },
      );
      if (
        Array.isArray(a) &&
        a.length === ev.prompts.length &&
        a.every((s) => typeof s === 'string')
      ) {
        answers = a;
      }
    }
  } catch {
    answers = null;
  }
  const engine = host.engine();
  if (engine === undefined) return;
  engine.kbdAnswers(answers);
  host.pump();
}

/**
 * Signs a signRequest with the first securityKey method; the engine waits (auth_sign) meanwhile.
 * A failure cancels the authentication and is kept (`fail`) as the error of its close.
 */
async function signChallenge(
  ev: Extract<SshEngineEvent, { type: 'signRequest' }>,
  methods: SshAuthMethod[],
  host: HandshakeHost,
  fail: (e: ManaError) => void,
): Promise<void> {
  const method = methods.find(
    (m): m is Extract<SshAuthMethod, { securityKey: SecurityKeyCredential }> => 'securityKey' in m,
  );
  let signature: Uint8Array | null = null;
  host.diag('ssh_auth_sign', `${ev.data.length} bytes to sign`);
  try {
    if (method === undefined) throw new Error('no securityKey method');
    signature = await (method.sign ?? signWithSecurityKey)(method.securityKey, ev.data);
  } catch (e) {
    fail(
      e instanceof SecurityKeyError
        ? e
        : new SecurityKeyError(`the security key did not sign: ${String(e)}`, {
            code: 'security_key_unavailable',
            origin: 'local',
            methods: [],
            cause: e,
          }),
    );
    host.diag('ssh_auth_sign', `failed: ${String(e)}`);
  }
  const engine = host.engine();
  if (engine === undefined) return;
  engine.signResult(signature);
  host.pump();
}

/** The events of the open up to authentication, and what they taught (info). */
export class SshHandshake {
  /** Negotiated algorithms, host key fingerprint and auth method, as far as known. */
  info: Partial<SshSessionInfo> = {};
  readonly #hostKeys: HostKeyCheck;
  readonly #methods: SshAuthMethod[];
  readonly #host: HandshakeHost;
  /** Why the application side cancelled the authentication (a security key failure). */
  #authError: ManaError | undefined;

  constructor(
    target: { host: string; port: number },
    known: KnownHosts,
    options: SshSessionOptions,
    host: HandshakeHost,
  ) {
    this.#hostKeys = new HostKeyCheck(target, known, options, host);
    this.#methods = Array.isArray(options.auth) ? options.auth : [options.auth];
    this.#host = host;
  }

  /** Handles an event of key exchange, host key or authentication; false for any other. */
  handle(ev: SshEngineEvent): boolean {
    const host = this.#host;
    switch (ev.type) {
      case 'kexDone':
        this.info = {
          ...this.info,
          kex: ev.kex,
          hostKeyAlgorithm: ev.hostKey,
          cipherClientToServer: ev.cipherClientToServer,
          cipherServerToClient: ev.cipherServerToClient,
          macClientToServer: ev.macClientToServer,
          macServerToClient: ev.macServerToClient,
        };
        host.diag(
          'ssh_kex_done',
          `kex=${ev.kex} hostkey=${ev.hostKey} c2s=${ev.cipherClientToServer}/${ev.macClientToServer} ` +
            `s2c=${ev.cipherServerToClient}/${ev.macServerToClient}`,
        );
        // Only reachable when the application offered them (algorithms: 'legacy' or its lists).
        for (const weak of weakNegotiated(ev)) host.diag('weak_algorithm', weak);
        return true;
      case 'hostKey':
        this.info = { ...this.info, fingerprint: ev.fingerprint };
        this.#hostKeys.check(ev);
        return true;
      case 'authMethods':
        host.diag('ssh_auth_methods', ev.methods);
        return true;
      case 'authResult':
        if (ev.ok) this.info = { ...this.info, authMethod: ev.method };
        host.diag(
          'ssh_auth_result',
          `${ev.method}: ${ev.ok ? 'ok' : 'failed'}` + (ev.ok ? '' : ` (${ev.code} ${ev.message})`),
        );
        return true;
      case 'kbdPrompts':
        void answerPrompts(ev, this.#methods, host);
        return true;
      case 'signRequest':
        void signChallenge(ev, this.#methods, host, (e) => {
          this.#authError = e;
        });
        return true;
      default:
        return false;
    }
  }

  /** `info` with '' for what is not known yet. */
  fullInfo(): SshSessionInfo {
    return {
      kex: '',
      hostKeyAlgorithm: '',
      fingerprint: '',
      cipherClientToServer: '',
      cipherServerToClient: '',
      macClientToServer: '',
      macServerToClient: '',
      authMethod: '',
      ...this.info,
    };
  }

  /** The error of a refused host key (the engine closed with `hostkey_rejected`). */
  hostKeyError(sshCode: number): HostKeyError {
    return this.#hostKeys.error(sshCode);
  }

  /** Why the authentication was cancelled on this side (a SecurityKeyError), if it was. */
  authError(): ManaError | undefined {
    return this.#authError;
  }
}
