"""Who may predict: an API key in ``X-API-Key`` and/or a JWT in ``Authorization: Bearer``.

With both configured, either one is enough. With neither, the server is open (and
says so at start). API keys are compared in constant time. JWTs are checked with the
algorithms pinned in the settings (never the token's own choice), and must carry
``exp`` and ``aud``; ``aud`` must match, ``iss`` too when configured. A verified token
is remembered until its ``exp``, so a client that reuses its token pays for the
signature check once (an RS256 verification costs tens of microseconds).

The health, readiness and metrics endpoints never ask for credentials (`rest`).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable, Sequence

from model_server.errors import Unauthorized
from model_server.settings import ServerSettings

API_KEY_HEADER = b"x-api-key"
TOKEN_CACHE_SIZE = 4096


class JwtVerifier:
    def __init__(
        self,
        key: str,
        algorithms: Sequence[str],
        audience: str,
        issuer: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import jwt  # with cryptography, ~9 MB per process: only when JWTs are configured

        self._jwt = jwt
        jws = jwt.PyJWS()
        for algorithm in algorithms:  # a key that cannot serve an algorithm fails at start
            try:
                jws.get_algorithm_by_name(algorithm).prepare_key(key)
            except (NotImplementedError, jwt.InvalidKeyError, ValueError) as exc:
                raise ValueError(f"the JWT key cannot be used with {algorithm}: {exc}") from exc
        self._key = key
        self._algorithms = list(algorithms)
        self._audience = audience
        self._issuer = issuer
        self._required = ["exp", "aud", *(["iss"] if issuer else [])]
        self._clock = clock
        self._verified: dict[str, float] = {}  # token -> exp

    def verify(self, token: str) -> None:
        expires = self._verified.get(token)
        if expires is not None and self._clock() < expires:
            return
        jwt = self._jwt
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": self._required},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid bearer token: {exc}") from None
        if len(self._verified) >= TOKEN_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = float(claims["exp"])


class Authenticator:
    def __init__(self, api_keys: Iterable[str] = (), jwt_verifier: JwtVerifier | None = None):
        self._keys = [k.encode() for k in api_keys]
        self._jwt = jwt_verifier
        self.uses_api_keys = bool(self._keys)
        self.uses_jwt = jwt_verifier is not None
        self.enabled = self.uses_api_keys or self.uses_jwt
        accepted = [
            *(["an X-API-Key header"] if self._keys else []),
            *(["an Authorization: Bearer <JWT> header"] if jwt_verifier else []),
        ]
        self._missing = f"missing credentials: send {' or '.join(accepted)}"
        self.challenge = 'Bearer realm="forecast-server"' if jwt_verifier else "ApiKey"

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> Authenticator:
        verifier = None
        if settings.jwt_key is not None:
            assert settings.jwt_audience is not None  # the settings require it
            verifier = JwtVerifier(
                settings.jwt_key.get_secret_value(),
                settings.jwt_algorithms,
                settings.jwt_audience,
                settings.jwt_issuer,
            )
        return cls([k.get_secret_value() for k in settings.api_keys], verifier)

    def check(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Pass, or raise `Unauthorized` naming what is missing or wrong.

        `headers` are ASGI headers: lower-case names, raw values.
        """
        if not self.enabled:
            return
        api_key = authorization = None
        for name, value in headers:
            if name == API_KEY_HEADER:
                api_key = value
            elif name == b"authorization":
                authorization = value
        if api_key is not None and self._keys:
            if self._known_key(api_key):
                return
            raise Unauthorized("invalid API key", self.challenge)
        if authorization is not None and self._jwt is not None:
            scheme, _, token = authorization.partition(b" ")
            if scheme.lower() != b"bearer" or not token.strip():
                raise Unauthorized(
                    "the Authorization header must be 'Bearer <token>'", self.challenge
                )
            self._jwt.verify(token.strip().decode("latin-1"))
            return
        raise Unauthorized(self._missing, self.challenge)

    def _known_key(self, candidate: bytes) -> bool:
        found = False
        for key in self._keys:  # every key is compared: the time does not tell which matched
            found |= hmac.compare_digest(candidate, key)
        return found
