"""API keys and JWTs: constant-time keys, pinned algorithms, exp and aud required."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from model_server.auth import Authenticator, JwtVerifier
from model_server.errors import Unauthorized

SECRET = "a-hmac-secret-long-enough-for-hs512-" + "x" * 40
AUDIENCE = "forecast-server"


def headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in values.items()]


def token(key: str = SECRET, algorithm: str = "HS256", **claims: object) -> str:
    # a day ahead: parametrized tokens are made at collection, maybe long before they run
    base: dict[str, object] = {"aud": AUDIENCE, "exp": int(time.time()) + 86400, "sub": "client"}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, key, algorithm=algorithm)


def bearer(value: str) -> list[tuple[bytes, bytes]]:
    return headers(authorization=f"Bearer {value}")


@pytest.fixture
def hs256() -> Authenticator:
    return Authenticator(jwt_verifier=JwtVerifier(SECRET, ["HS256"], AUDIENCE))


RsaKey = tuple[rsa.RSAPrivateKey, str]


@pytest.fixture(scope="module")
def rsa_key() -> RsaKey:
    """An RSA private key and its public key in PEM, as a server would be given it."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public_pem


def test_open_when_nothing_is_configured() -> None:
    auth = Authenticator()
    assert not auth.enabled
    auth.check([])


def test_api_keys() -> None:
    auth = Authenticator(["old-key", "new-key"])
    auth.check(headers(x_api_key="new-key"))
    auth.check(headers(x_api_key="old-key"))
    with pytest.raises(Unauthorized, match="invalid API key"):
        auth.check(headers(x_api_key="new-kez"))
    with pytest.raises(
        Unauthorized, match="missing credentials: send an X-API-Key header"
    ) as caught:
        auth.check(headers(other="x"))
    assert caught.value.status_code == 401
    assert caught.value.headers == {"www-authenticate": "ApiKey"}


def test_valid_jwt(hs256: Authenticator) -> None:
    hs256.check(bearer(token()))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (token(exp=int(time.time()) - 10), "Signature has expired"),
        (token(aud="someone-else"), "Audience doesn't match"),
        (token(aud=None), 'missing the "aud" claim'),
        (token(exp=None), 'missing the "exp" claim'),
        (token(key=SECRET + "x"), "Signature verification failed"),
        (token(algorithm="HS512"), "alg value is not allowed"),
        (
            jwt.encode({"aud": AUDIENCE, "exp": int(time.time()) + 86400}, None, algorithm="none"),
            "alg value is not allowed",
        ),
        ("not.a.jwt", "invalid bearer token"),
    ],
)
def test_bad_jwts(hs256: Authenticator, value: str, message: str) -> None:
    with pytest.raises(Unauthorized, match="invalid bearer token") as caught:
        hs256.check(bearer(value))
    assert message in caught.value.message


def test_authorization_header_must_be_bearer(hs256: Authenticator) -> None:
    with pytest.raises(Unauthorized, match="must be 'Bearer <token>'"):
        hs256.check(headers(authorization=f"Basic {token()}"))
    with pytest.raises(Unauthorized, match="must be 'Bearer <token>'"):
        hs256.check(headers(authorization="Bearer "))
    with pytest.raises(Unauthorized, match=r"missing credentials: send an Authorization: Bearer"):
        hs256.check([])


def test_issuer_is_required_and_checked_when_configured() -> None:
    auth = Authenticator(jwt_verifier=JwtVerifier(SECRET, ["HS256"], AUDIENCE, issuer="idp"))
    auth.check(bearer(token(iss="idp")))
    with pytest.raises(Unauthorized, match="Invalid issuer"):
        auth.check(bearer(token(iss="evil")))
    with pytest.raises(Unauthorized, match='"iss"'):
        auth.check(bearer(token()))


def test_either_credential_is_enough_when_both_are_configured() -> None:
    auth = Authenticator(["k"], JwtVerifier(SECRET, ["HS256"], AUDIENCE))
    auth.check(headers(x_api_key="k"))
    auth.check(bearer(token()))
    with pytest.raises(Unauthorized, match="an X-API-Key header or an Authorization: Bearer"):
        auth.check([])


def test_rs256_with_a_public_key(rsa_key: RsaKey) -> None:
    private, public_pem = rsa_key
    auth = Authenticator(jwt_verifier=JwtVerifier(public_pem, ["RS256"], AUDIENCE))
    auth.check(bearer(token(key=private, algorithm="RS256")))  # type: ignore[arg-type]
    # the classic confusion: an HS256 token signed with the public key as the secret
    with pytest.raises(Unauthorized):
        auth.check(
            bearer(
                jwt.encode(
                    {"aud": AUDIENCE, "exp": time.time() + 60}, public_pem.encode()[:32], "HS256"
                )
            )
        )


def test_a_key_unfit_for_the_pinned_algorithm_fails_at_start(rsa_key: RsaKey) -> None:
    _, public_pem = rsa_key
    with pytest.raises(ValueError, match="cannot be used with HS256"):
        JwtVerifier(public_pem, ["HS256"], AUDIENCE)


def test_a_verified_token_is_remembered_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.time()]
    verifier = JwtVerifier(SECRET, ["HS256"], AUDIENCE, clock=lambda: now[0])
    good = token(exp=int(now[0]) + 30)
    verifier.verify(good)

    def refuse(*args: object, **kwargs: object) -> None:
        raise jwt.InvalidSignatureError("checked again")

    monkeypatch.setattr(jwt, "decode", refuse)
    verifier.verify(good)  # remembered: no second signature check
    now[0] += 31  # past its exp: checked again
    with pytest.raises(Unauthorized, match="checked again"):
        verifier.verify(good)
