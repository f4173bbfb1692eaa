# SPDX-License-Identifier: Apache-2.0
"""The one JWT minter of the Python tools (twin of tokens.mjs): HS256 tokens for mana-gateway
([auth] jwt_secret_file), RS256/ES256/EdDSA tokens with a `kid` ([auth] jwks_file), and the keys
for them. Keys come from the CSPRNG (`secrets`, OpenSSL through python3-cryptography); nothing
here logs one. HS384/HS512 exist only so that tests can show the gateway refuses them.

HS256 needs the standard library only; the asymmetric algorithms use Debian's python3-jwt
(PyJWT) with python3-cryptography, imported when first used.

    key = tokens.new_keypair("ES256")
    tokens.write_jwks(path, {"ec-2025": key})       # the public halves only
    tok = tokens.mint(key, {"sub": "alice"}, "ES256", kid="ec-2025")
"""
import base64
import hashlib
import hmac
import json
import os
import secrets
import time

_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
ASYMMETRIC = ("RS256", "ES256", "EdDSA")


def new_secret():
    """A fresh random key: 48 base64url characters (36 random bytes; the gateway needs >= 32)."""
    return secrets.token_urlsafe(36)


def write_secret(path, secret):
    """Writes `secret` to `path` with mode 0600 and returns `path`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, 0o600)
    return path


def new_keypair(algorithm):
    """A fresh private key for `algorithm`: RSA 2048 (RS256), EC P-256 (ES256), Ed25519
    (EdDSA). A python3-cryptography key object; mint() signs with it, public_jwk() exports its
    public half."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError("new_keypair: %r is not one of %s" % (algorithm, ", ".join(ASYMMETRIC)))


def public_jwk(key, kid):
    """The public JWK (RFC 7517) of private key `key`, with `kid`; never the private part."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
    exporter = {rsa.RSAPrivateKey: RSAAlgorithm, ec.EllipticCurvePrivateKey: ECAlgorithm,
                ed25519.Ed25519PrivateKey: OKPAlgorithm}
    for kind, alg in exporter.items():
        if isinstance(key, kind):
            jwk = json.loads(alg.to_jwk(key.public_key()))
            if kind is ec.EllipticCurvePrivateKey:
                # RFC 7518 6.2.1.2: x and y are the full coordinate size. Debian's PyJWT drops
                # leading zero bytes (one key in 128 per coordinate), which the gateway refuses.
                size = (key.curve.key_size + 7) // 8
                nums = key.public_key().public_numbers()
                jwk["x"] = _b64(nums.x.to_bytes(size, "big"))
                jwk["y"] = _b64(nums.y.to_bytes(size, "big"))
            jwk["kid"] = kid
            return jwk
    raise ValueError("public_jwk: not an RSA, EC or Ed25519 private key")


def public_pem(key):
    """The SubjectPublicKeyInfo PEM (bytes) of private key `key`: what a confused verifier
    would take as an HMAC key (tests forge HS256 tokens with it)."""
    from cryptography.hazmat.primitives import serialization
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def write_jwks(path, keys):
    """Writes the JWKS {"keys": [...]} of `keys` ({kid: private key}, public halves only) to
    `path` and returns `path`."""
    doc = {"keys": [public_jwk(k, kid) for kid, k in keys.items()]}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    return path


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret, claims, algorithm="HS256", exp_in=300, kid=None):
    """A JWT over `claims`. HS256/384/512: signed with `secret` (str or bytes). RS256, ES256,
    EdDSA: `secret` is a private key from new_keypair(), and `kid` names its JWKS entry (the
    gateway picks the key by kid). `kid` goes into the header whenever given, also for HMAC (so
    that tests can forge an HS256 token that names an RSA key). `exp` defaults to now + exp_in
    seconds; exp=None in `claims` leaves it out. Claims the gateway reads: sub, exp, nbf, iss,
    aud, targets ("host:port" allowlist)."""
    body = {"exp": int(time.time()) + exp_in}
    body.update(claims)
    if body["exp"] is None:
        del body["exp"]
    header = {"alg": algorithm, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    if algorithm in ASYMMETRIC:
        import jwt
        return jwt.encode(body, secret, algorithm=algorithm, headers=header)
    key = secret.encode() if isinstance(secret, str) else secret
    head = _b64(json.dumps(header, separators=(",", ":")).encode())
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    signing = ("%s.%s" % (head, payload)).encode()
    sig = hmac.new(key, signing, _HASHES[algorithm]).digest()
    return "%s.%s" % (signing.decode(), _b64(sig))
