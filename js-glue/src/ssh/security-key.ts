// SPDX-License-Identifier: Apache-2.0
// Security keys (FIDO2 keys and platform passkeys) through WebAuthn: enrollSecurityKey() makes a
// credential with navigator.credentials.create() and returns its OpenSSH authorized_keys line; an
// SSH session with `auth: { securityKey }` answers the engine's signature request with
// navigator.credentials.get() over the data to sign, as the webauthn signature OpenSSH (>= 8.4)
// verifies. No private key is ever in the page. docs/ssh-in-browser.md ("Security keys").
import { nameErrorClasses } from '../errors.js';
import { SshAuthError } from './errors.js';
import {
  authorizedKeysLine,
  coseEs256Point,
  FLAG_UP,
  FLAG_UV,
  FormatError,
  fromBase64Url,
  parseAuthenticatorData,
  parseSkEcdsaPublicKey,
  SK_ECDSA_KEY_TYPE,
  skEcdsaPublicKeyBlob,
  toBase64,
  toBase64Url,
  webauthnSignatureBlob,
} from './webauthn-blob.js';

/** What auth.securityKey needs: what enrollSecurityKey() returned (store it with the user). */
export interface SecurityKeyCredential {
  /** The WebAuthn credential id, base64url. */
  credentialId: string;
  /** The OpenSSH public key: `sk-ecdsa-sha2-nistp256@openssh.com AAAA...` (a whole
   *  authorized_keys line also works). Its application must be `rpId`. */
  publicKey: string;
  /** The WebAuthn relying party id (a registrable domain of the page's origin, never an IP). */
  rpId: string;
  /** WebAuthn userVerification of the signature. Default `preferred`; a key marked
   *  `verify-required` in authorized_keys needs the authenticator to verify the user. */
  userVerification?: 'required' | 'preferred' | 'discouraged';
  /** get() timeout, ms. Default 60000. */
  timeoutMs?: number;
}

export interface EnrollSecurityKeyOptions {
  /** The relying party id: the page's host or a registrable suffix of it; becomes the SSH key's
   *  application. */
  rpId: string;
  /** The account name shown by the authenticator (and the key's comment). */
  user: string;
  /** Ask the authenticator to verify the user (PIN, biometrics) and mark the key
   *  `verify-required` in the authorized_keys line, so sshd demands it at every login. */
  verifyRequired?: boolean;
  /** Relying party name shown by the browser. Default: rpId. */
  rpName?: string;
  timeoutMs?: number;
}

export interface EnrolledSecurityKey {
  /** The line to add to ~/.ssh/authorized_keys on the server. */
  authorizedKeysLine: string;
  /** What to store and pass as `auth: { securityKey }` later (no secret in it). */
  credential: SecurityKeyCredential;
}

/**
 * A security key could not sign or enrol (`code`): `security_key_unavailable` (no WebAuthn in
 * this context: not a secure context, a worker, no authenticator), `security_key_cancelled`
 * (the user cancelled, the request timed out, or no credential of this rpId was found: browsers
 * do not tell these apart), `presence_not_given` (the authenticator signed without user presence;
 * nothing was sent), `rp_id_mismatch` (the rpId is not valid for this page, or differs from the
 * key's application), `security_key_unsupported` (not an ES256 credential, or a malformed
 * answer). A refusal by the server is SshAuthError `auth_failed` with the methods it allows.
 */
export class SecurityKeyError extends SshAuthError {}
nameErrorClasses({ SecurityKeyError });

function keyError(code: string, message: string, cause?: unknown): SecurityKeyError {
  return new SecurityKeyError(message, { code, origin: 'local', methods: [], cause });
}

function webauthn(): CredentialsContainer {
  const c = (globalThis as { navigator?: { credentials?: CredentialsContainer } }).navigator
    ?.credentials;
  const secure = (globalThis as { isSecureContext?: boolean }).isSecureContext;
  if (c === undefined || typeof c.get !== 'function' || secure === false) {
    throw keyError(
      'security_key_unavailable',
      'WebAuthn is not available here (it needs a page in a secure context: https or http://localhost)',
    );
  }
  return c;
}

/** A WebAuthn DOMException as a SecurityKeyError. */
function fromDomError(e: unknown, rpId: string): SecurityKeyError {
  const name = (e as { name?: unknown }).name;
  const msg = (e as { message?: unknown }).message;
  const detail = typeof msg === 'string' && msg !== '' ? `: ${msg}` : '';
  if (name === 'NotAllowedError' || name === 'AbortError') {
    return keyError(
      'security_key_cancelled',
      `the security key request was cancelled, timed out, or found no credential for ${rpId}${detail}`,
      e,
    );
  }
  if (name === 'SecurityError') {
    return keyError('rp_id_mismatch', `rpId ${rpId} is not valid for this page${detail}`, e);
  }
  if (name === 'NotSupportedError' || name === 'InvalidStateError') {
    return keyError('security_key_unsupported', `the authenticator cannot do this${detail}`, e);
  }
  return keyError('security_key_unavailable', `the security key request failed${detail}`, e);
}

function bytes(b: ArrayBuffer | ArrayBufferView): Uint8Array {
  return b instanceof ArrayBuffer
    ? new Uint8Array(b)
    : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Makes a new ES256 credential on a security key or passkey and returns the OpenSSH public key
 * line for authorized_keys (`sk-ecdsa-sha2-nistp256@openssh.com`, application = rpId) and the
 * credential to store. Call it from a user gesture (click). Throws SecurityKeyError.
 */
export async function enrollSecurityKey(o: EnrollSecurityKeyOptions): Promise<EnrolledSecurityKey> {
  if (typeof o.rpId !== 'string' || o.rpId === '' || typeof o.user !== 'string' || o.user === '') {
    throw keyError('security_key_unsupported', 'enrollSecurityKey: rpId and user are required');
  }
  const creds = webauthn();
  const userId = crypto.getRandomValues(new Uint8Array(16));
  let cred: Credential | null;
  try {
    cred = await creds.create({
      publicKey: {
        rp: { id: o.rpId, name: o.rpName ?? o.rpId },
        user: { id: userId, name: o.user, displayName: o.user },
        challenge: crypto.getRandomValues(new Uint8Array(32)),
        pubKeyCredParams: [{ type: 'public-key', alg: -7 }], // ES256 only: OpenSSH's webauthn form
        authenticatorSelection: {
          residentKey: 'discouraged',
          userVerification: o.verifyRequired === true ? 'required' : 'preferred',
        },
        attestation: 'none',
        timeout: o.timeoutMs ?? 60000,
      },
    });
  } catch (e) {
    throw fromDomError(e, o.rpId);
  }
  const response = (cred as PublicKeyCredential | null)?.response as
    AuthenticatorAttestationResponse | undefined;
  if (
    cred === null ||
    response === undefined ||
    typeof response.getAuthenticatorData !== 'function'
  ) {
    throw keyError('security_key_unsupported', 'the browser returned no attestation');
  }
  let blob: Uint8Array;
  let credentialId: Uint8Array;
  let flags: number;
  try {
    const ad = parseAuthenticatorData(bytes(response.getAuthenticatorData()));
    if (ad.cosePublicKey === undefined || ad.credentialId === undefined) {
      throw new FormatError('no attested credential data');
    }
    blob = skEcdsaPublicKeyBlob(coseEs256Point(ad.cosePublicKey), o.rpId);
    credentialId = ad.credentialId;
    flags = ad.flags;
  } catch (e) {
    throw keyError('security_key_unsupported', `unusable credential: ${(e as Error).message}`, e);
  }
  if (o.verifyRequired === true && (flags & FLAG_UV) === 0) {
    throw keyError('security_key_unsupported', 'the authenticator did not verify the user');
  }
  const publicKey = `${SK_ECDSA_KEY_TYPE} ${toBase64(blob)}`;
  return {
    authorizedKeysLine: authorizedKeysLine(blob, {
      verifyRequired: o.verifyRequired === true,
      comment: `${o.user}@${o.rpId}`,
    }),
    credential: {
      credentialId: toBase64Url(credentialId),
      publicKey,
      rpId: o.rpId,
      ...(o.verifyRequired === true ? { userVerification: 'required' as const } : {}),
    },
  };
}

/** The key blob the engine sends of a credential, after checking its application is the rpId. */
export function securityKeyBlob(c: SecurityKeyCredential): Uint8Array {
  let key: { blob: Uint8Array; application: string };
  try {
    key = parseSkEcdsaPublicKey(c.publicKey);
  } catch (e) {
    throw keyError('security_key_unsupported', `securityKey.publicKey: ${(e as Error).message}`, e);
  }
  if (key.application !== c.rpId) {
    throw keyError(
      'rp_id_mismatch',
      `securityKey.rpId ${c.rpId} differs from the key's application ${key.application}`,
    );
  }
  return key.blob;
}

/**
 * Signs `data` (the engine's signRequest) with the credential through navigator.credentials.get()
 * and returns the webauthn signature blob. Throws SecurityKeyError.
 */
export async function signWithSecurityKey(
  c: SecurityKeyCredential,
  data: Uint8Array,
): Promise<Uint8Array> {
  securityKeyBlob(c);
  const creds = webauthn();
  let id: Uint8Array;
  try {
    id = fromBase64Url(c.credentialId);
  } catch (e) {
    throw keyError('security_key_unsupported', 'securityKey.credentialId is not base64url', e);
  }
  let cred: Credential | null;
  try {
    cred = await creds.get({
      publicKey: {
        challenge: data,
        rpId: c.rpId,
        allowCredentials: [{ type: 'public-key', id }],
        userVerification: c.userVerification ?? 'preferred',
        timeout: c.timeoutMs ?? 60000,
      },
    });
  } catch (e) {
    throw fromDomError(e, c.rpId);
  }
  const response = (cred as PublicKeyCredential | null)?.response as
    AuthenticatorAssertionResponse | undefined;
  if (cred === null || response === undefined) {
    throw keyError('security_key_cancelled', 'the browser returned no assertion');
  }
  const assertion = {
    authenticatorData: bytes(response.authenticatorData),
    clientDataJSON: bytes(response.clientDataJSON),
    signature: bytes(response.signature),
  };
  let flags: number;
  let blob: Uint8Array;
  try {
    flags = parseAuthenticatorData(assertion.authenticatorData).flags;
    blob = webauthnSignatureBlob(assertion, data);
  } catch (e) {
    throw keyError('security_key_unsupported', `unusable assertion: ${(e as Error).message}`, e);
  }
  // sshd refuses it too (unless the key is no-touch-required); fail here, without sending it.
  if ((flags & FLAG_UP) === 0) {
    throw keyError(
      'presence_not_given',
      'the security key signed without user presence (no touch)',
    );
  }
  return blob;
}
