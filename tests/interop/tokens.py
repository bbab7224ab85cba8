"""OAUTHBEARER tokens for the interop tests: RS256 JWTs signed with openssl
(`openssl dgst -sha256 -sign`, a PKCS#1 v1.5 signature, which is RS256's),
by the issuer key run.sh makes; `python3 tokens.py jwks KEY OUT` writes the
JWKS the broker trusts."""

import base64
import json
import os
import subprocess
import sys
import time

ISSUER = "https://idp.interop.test/realms/kafka"
AUDIENCE = "fjord"
KID = "interop-1"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(sub, lifetime_s=300, aud=AUDIENCE, key=None):
    """A JWT for `sub`, valid `lifetime_s` seconds (negative: expired)."""
    key = key or os.environ["OAUTH_KEY"]
    now = int(time.time())
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": KID}).encode())
    claims = {"sub": sub, "iss": ISSUER, "aud": aud, "iat": min(now, now + lifetime_s),
              "exp": now + lifetime_s, "scope": "kafka"}
    payload = b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                               input=signing_input, capture_output=True, check=True).stdout
    return f"{header}.{payload}.{b64url(signature)}"


def write_jwks(key, out):
    modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"],
                             capture_output=True, check=True, text=True).stdout
    n = bytes.fromhex(modulus.strip().split("=", 1)[1])
    jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID, "n": b64url(n), "e": "AQAB"}
    with open(out, "w") as f:
        json.dump({"keys": [jwk]}, f)


if __name__ == "__main__" and sys.argv[1:2] == ["jwks"]:
    write_jwks(sys.argv[2], sys.argv[3])
