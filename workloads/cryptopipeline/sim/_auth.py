"""The simulator's check of CDP JWTs: the order API's (whose `uri` claim names the request)
and the Advanced Trade feed's subscribe (which carries none).

The token's shape is `cryptopipeline.coinbase`'s, the one the bot signs with: ES256, header
`kid` = a known key name and a `nonce`, claims `iss` "cdp", `sub` = kid, `nbf` <= now < `exp`.
A nonce is accepted once while its token lives.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from cryptopipeline.coinbase import TOKEN_ALGORITHM, TOKEN_CLAIMS, TOKEN_ISSUER

_LEEWAY_S = 5


class TokenCheck:
    """Refuses a token for the first reason it finds; remembers the nonces it accepted."""

    def __init__(self, keys: Mapping[str, EllipticCurvePublicKey]) -> None:
        self.keys = keys
        self._nonces: dict[str, float] = {}

    def refusal(self, token: str, uri: str | None = None) -> str | None:
        """Why `token` is refused, or None when it is good; with `uri`, the token's `uri`
        claim must be exactly that ("METHOD host/path")."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return "malformed token"
        kid, nonce = header.get("kid"), header.get("nonce")
        if header.get("alg") != TOKEN_ALGORITHM:
            return f"alg must be {TOKEN_ALGORITHM}"
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            return "unknown key"
        if not isinstance(nonce, str) or not nonce:
            return "missing nonce"
        required = [c for c in TOKEN_CLAIMS if c != "uri" or uri is not None]
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[TOKEN_ALGORITHM],
                issuer=TOKEN_ISSUER,
                leeway=_LEEWAY_S,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError:
            return "token expired"
        except jwt.ImmatureSignatureError:
            return "token not yet valid"
        except jwt.InvalidSignatureError:
            return "bad signature"
        except jwt.PyJWTError as exc:
            return f"invalid token ({type(exc).__name__})"
        if claims.get("sub") != kid:
            return "sub must be the key name"
        if uri is not None and claims.get("uri") != uri:
            return "uri claim does not match the request"
        now = time.time()
        self._nonces = {n: t for n, t in self._nonces.items() if t > now}
        if nonce in self._nonces:
            return "token replayed (nonce seen before)"
        self._nonces[nonce] = float(claims["exp"]) + _LEEWAY_S
        return None
