# SPDX-License-Identifier: Apache-2.0
"""The one JWT minter of the Python tools (twin of tokens.mjs): HS256 tokens for mana-gateway
([auth] jwt_secret_file), and the keys for them. Keys come from the CSPRNG (`secrets`); nothing
here logs one. HS384/HS512 exist only so that tests can show the gateway refuses them."""
import base64
import hashlib
import hmac
import json
import os
import secrets
import time

_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


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


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret, claims, algorithm="HS256", exp_in=300):
    """A JWT over `claims` signed with `secret` (str or bytes). `exp` defaults to now + exp_in
    seconds; exp=None in `claims` leaves it out. Claims the gateway reads: sub, exp, nbf,
    targets ("host:port" allowlist)."""
    body = {"exp": int(time.time()) + exp_in}
    body.update(claims)
    if body["exp"] is None:
        del body["exp"]
    key = secret.encode() if isinstance(secret, str) else secret
    head = _b64(json.dumps({"alg": algorithm, "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    signing = ("%s.%s" % (head, payload)).encode()
    sig = hmac.new(key, signing, _HASHES[algorithm]).digest()
    return "%s.%s" % (signing.decode(), _b64(sig))
