// SPDX-License-Identifier: Apache-2.0
// A software WebAuthn authenticator for the Node tests of security keys: navigator.credentials
// create() / get() over node:crypto P-256 keys, answering in the formats a browser returns
// (attested credential data with an ES256 COSE key; authenticatorData, clientDataJSON and a DER
// signature). `presence` and `verified` play CDP's virtual authenticator switches.
import crypto from 'node:crypto';

export const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
export const u8 = (b) => new Uint8Array(b);
export const ORIGIN = 'http://localhost:5173';

/** A CTAP2-like authenticator with user verification; `presence` and `verified` as CDP's
 *  virtual authenticator sets them. */
export class SoftAuthenticator {
  presence = true;
  verified = true;
  alg = -7;
  creds = new Map(); // id (hex) -> { key, rpId, counter }

  #flags() {
    return (this.presence ? 0x01 : 0) | (this.verified ? 0x04 : 0);
  }

  async create({ publicKey: o }) {
    if (!o.pubKeyCredParams.some((p) => p.alg === this.alg)) {
      throw Object.assign(new Error('no supported algorithm'), { name: 'NotSupportedError' });
    }
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const id = crypto.randomBytes(32);
    this.creds.set(id.toString('hex'), { key: privateKey, rpId: o.rp.id, counter: 0 });
    const x = Buffer.from(jwk.x, 'base64url');
    const y = Buffer.from(jwk.y, 'base64url');
    const cose =
      this.alg === -7
        ? Buffer.concat([
            Buffer.from('a5010203262001215820', 'hex'),
            x,
            Buffer.from('225820', 'hex'),
            y,
          ])
        : Buffer.concat([Buffer.from('a4010103272006215820', 'hex'), x]);
    const authData = Buffer.concat([
      sha256(o.rp.id),
      Buffer.from([this.#flags() | 0x40, 0, 0, 0, 0]),
      Buffer.alloc(16),
      Buffer.from([0, id.length]),
      id,
      cose,
    ]);
    return {
      type: 'public-key',
      rawId: u8(id).buffer,
      response: { getAuthenticatorData: () => u8(authData).buffer },
    };
  }

  async get({ publicKey: o }) {
    if (o.rpId !== 'localhost') {
      throw Object.assign(new Error('The relying party ID is not a registrable domain suffix'), {
        name: 'SecurityError',
      });
    }
    const found = o.allowCredentials
      .map((c) => this.creds.get(Buffer.from(c.id).toString('hex')))
      .find((c) => c !== undefined && c.rpId === o.rpId);
    if (found === undefined) {
      throw Object.assign(new Error('The operation either timed out or was not allowed.'), {
        name: 'NotAllowedError',
      });
    }
    found.counter += 1;
    const clientDataJSON = Buffer.from(
      `{"type":"webauthn.get","challenge":"${Buffer.from(o.challenge).toString('base64url')}",` +
        `"origin":"${ORIGIN}","crossOrigin":false}`,
    );
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(found.counter);
    const authenticatorData = Buffer.concat([
      sha256(o.rpId),
      Buffer.from([this.#flags()]),
      counter,
    ]);
    const signature = crypto.sign(
      'sha256',
      Buffer.concat([authenticatorData, sha256(clientDataJSON)]),
      {
        key: found.key,
        dsaEncoding: 'der',
      },
    );
    return {
      type: 'public-key',
      response: {
        authenticatorData: u8(authenticatorData).buffer,
        clientDataJSON: u8(clientDataJSON).buffer,
        signature: u8(signature).buffer,
      },
    };
  }
}

export function install(auth) {
  Object.defineProperty(globalThis, 'navigator', {
    value: { credentials: { create: (o) => auth.create(o), get: (o) => auth.get(o) } },
    configurable: true,
  });
}
