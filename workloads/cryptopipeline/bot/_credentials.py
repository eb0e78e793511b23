"""CDP API keys and the JWT that authenticates each Advanced Trade request.

A key is a name (`organizations/{org}/apiKeys/{id}`) and an EC P-256 private key in PEM. The
token (its claims and header fields are `cryptopipeline.coinbase`'s): ES256, header `kid` =
key name and a random `nonce`; claims `iss` "cdp", `sub` = key name, `nbf` = now, `exp` =
now + 120 s, `uri` = "METHOD host/path". A fresh one per request. Neither the key nor a token
is ever put in a log line, an error or a repr.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from cryptopipeline.coinbase import TOKEN_ALGORITHM, token_claims, token_headers, token_uri


class CredentialsError(ValueError):
    """The configured key cannot be used (the message never contains the key)."""


@dataclass(frozen=True, slots=True)
class CdpCredentials:
    key_name: str = field(repr=False)
    private_key: EllipticCurvePrivateKey = field(repr=False)

    def __repr__(self) -> str:
        return "CdpCredentials(<hidden>)"

    @classmethod
    def from_pem(cls, key_name: str, pem: str) -> CdpCredentials:
        text = pem.replace("\\n", "\n").strip()  # env vars often carry escaped newlines
        try:
            key = load_pem_private_key(text.encode(), password=None)
        except Exception:  # any parser complaint may quote the input: say only what failed
            raise CredentialsError("the private key is not a readable PEM") from None
        if not isinstance(key, EllipticCurvePrivateKey):
            raise CredentialsError("the private key must be an EC (ES256) key")
        if not key_name:
            raise CredentialsError("the key name is empty")
        return cls(key_name, key)

    def token(self, method: str, host: str, path: str, now: float | None = None) -> str:
        """A JWT for one request to `host` (host[:port]) and `path` (no query string)."""
        issued = int(time.time() if now is None else now)
        claims = token_claims(self.key_name, token_uri(method, host, path), issued)
        headers = token_headers(self.key_name, secrets.token_hex(16))
        return jwt.encode(claims, self.private_key, algorithm=TOKEN_ALGORITHM, headers=headers)
