"""Who is the user? -- for a Python origin behind kontur-gate.

The gate sends every request it lets through with the user's identity in headers and a signed
X-Auth-Assertion (a 60-second JWT). When the origin can be reached other than through the gate,
only the assertion is proof: it is verified here against the gate's public keys
(/_auth/jwks.json), for this origin (aud) and, when the assertion names one, for this very request
(htm, htu: the gate's default ASSERTION_MODE=request; ASSERTION_MODE=session assertions carry none).

Needs PyJWT 2.6+ with cryptography, which ES256 and EdDSA need (Debian 12: apt-get install
python3-jwt python3-cryptography; elsewhere pip install "pyjwt[crypto]"). The JWKS is fetched with
the standard library.
"""

import base64
import json
import threading
import time
import urllib.parse
import urllib.request

import jwt

# The algorithm follows from the key's type, never from the token's header: {(kty, crv): alg}.
ALGORITHM_OF_KEY = {("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "EdDSA"}


class NotVerified(Exception):
    """The request carries no valid assertion for this origin and this request."""


def decode_name(raw):
    """X-Forwarded-Name: printable ASCII without % comes as is, anything else is UTF-8
    percent-encoded, so unquote is right for both ('%D0%98%D0%B2...' -> 'Ив...')."""
    return None if raw is None else urllib.parse.unquote(raw)


class GateVerifier:
    """gate_url: the site's public URL, where the gate runs (issuer, home of /_auth/jwks.json).
    origin_url: this app's URL as the gate forwards to it (the gate's ORIGIN_URL setting)."""

    def __init__(self, gate_url, origin_url, leeway=5):
        self.issuer = _origin(gate_url)
        self.audience = _origin(origin_url)
        self.jwks_url = self.issuer + "/_auth/jwks.json"
        self.leeway = leeway
        self._keys = None  # {kid: (PyJWK, alg)}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _key(self, kid):
        # Fetched once, and again when a token names an unknown kid (key rotation), at most every 30 s.
        with self._lock:
            if (self._keys is None or kid not in self._keys) and time.monotonic() - self._fetched_at > 30:
                self._keys = _fetch_keys(self.jwks_url)
                self._fetched_at = time.monotonic()
            if self._keys is None:
                raise NotVerified("the gate's keys are not available")
            if kid not in self._keys:
                raise NotVerified(f"no key {kid!r} in the gate's JWKS")
            return self._keys[kid]

    def verify(self, method, url, headers):
        """The verified user ({'sub', 'email', 'name'}) of a request; `url` is the request target
        as received ('/path?query'). Raises NotVerified."""
        token = headers.get("X-Auth-Assertion")
        if not token:
            raise NotVerified("no X-Auth-Assertion: the request did not come through the gate")
        try:
            key, algorithm = self._key(jwt.get_unverified_header(token).get("kid"))
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["iss", "aud", "sub", "iat", "exp"]},
            )
        except jwt.PyJWTError as error:
            raise NotVerified(f"X-Auth-Assertion is not valid: {error}") from error
        now = int(time.time())
        if not isinstance(claims["sub"], str):
            raise NotVerified("X-Auth-Assertion has no sub")
        if claims["iat"] > now + self.leeway or now - claims["iat"] > 60 + self.leeway:
            raise NotVerified("X-Auth-Assertion is not fresh")
        # Made for this request: not one replayed from another method or URL within its 60 seconds.
        # Checked when the assertion names them (ASSERTION_MODE=request, the gate's default); an
        # ASSERTION_MODE=session assertion names no request and is valid for any within its lifetime.
        if "htm" in claims and claims["htm"] != method:
            raise NotVerified(f"assertion made for {claims['htm']}, not {method}")
        if "htu" in claims and claims["htu"] != self.audience + url:
            raise NotVerified(f"assertion made for {claims['htu']}, not {self.audience + url}")
        # The gate marks an address the provider has not verified with email_verified: false; such
        # an address is not the user's proven e-mail, so it is not handed on as one.
        email = None if claims.get("email_verified") is False else claims.get("email")
        return {"sub": claims["sub"], "email": email, "name": claims.get("name")}


def _fetch_keys(jwks_url):
    """{kid: (PyJWK, alg)} of the usable keys at jwks_url; raises NotVerified."""
    try:
        with urllib.request.urlopen(jwks_url, timeout=5) as response:
            document = json.load(response)
    except (OSError, ValueError) as error:
        raise NotVerified(f"the gate's JWKS cannot be fetched: {error}") from error
    keys = {}
    for jwk in document.get("keys", []) if isinstance(document, dict) else []:
        algorithm = ALGORITHM_OF_KEY.get((jwk.get("kty"), jwk.get("crv"))) if isinstance(jwk, dict) else None
        if algorithm is None or not isinstance(jwk.get("kid"), str):
            continue
        try:
            keys[jwk["kid"]] = (jwt.PyJWK(jwk, algorithm), algorithm)
        except (jwt.PyJWTError, ValueError):
            continue  # a key this library cannot import is no key of the gate's
    return keys


def _origin(url):
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
