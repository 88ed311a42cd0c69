"""Who is the user? -- for a Python origin behind kontur-gate.

The gate sends every request it lets through with the user's identity in headers and a signed
X-Auth-Assertion (a 60-second JWT). When the origin can be reached other than through the gate,
only the assertion is proof: it is verified here against the gate's public keys
(/_auth/jwks.json), for this origin (aud), for this very request (htm, htu).

Needs joserfc (pip install joserfc); the JWKS is fetched with the standard library.
"""

import base64
import json
import threading
import time
import urllib.parse
import urllib.request

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHMS = ["ES256", "EdDSA"]


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
        self._keys = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _key_set(self, kid):
        # Fetched once, and again when a token names an unknown kid (key rotation), at most every 30 s.
        with self._lock:
            known = self._keys is not None and any(key.kid == kid for key in self._keys.keys)
            if not known and time.monotonic() - self._fetched_at > 30:
                with urllib.request.urlopen(self.jwks_url, timeout=5) as response:
                    self._keys = KeySet.import_key_set(json.load(response))
                self._fetched_at = time.monotonic()
            if self._keys is None:
                raise NotVerified("the gate's keys are not available")
            return self._keys

    def verify(self, method, url, headers):
        """The verified user ({'sub', 'email', 'name'}) of a request; `url` is the request target
        as received ('/path?query'). Raises NotVerified."""
        token = headers.get("X-Auth-Assertion")
        if not token:
            raise NotVerified("no X-Auth-Assertion: the request did not come through the gate")
        try:
            header = json.loads(_b64decode(token.split(".")[0]))
            decoded = jwt.decode(token, self._key_set(header.get("kid")), algorithms=ALGORITHMS)
            now = int(time.time())
            jwt.JWTClaimsRegistry(
                now=now,
                leeway=self.leeway,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                htm={"essential": True, "value": method},
                htu={"essential": True, "value": self.audience + url},
            ).validate(decoded.claims)
        except (JoseError, ValueError, IndexError) as error:
            raise NotVerified(f"X-Auth-Assertion is not valid: {error}") from error
        if decoded.claims["iat"] > now + self.leeway or now - decoded.claims["iat"] > 60 + self.leeway:
            raise NotVerified("X-Auth-Assertion is not fresh")
        claims = decoded.claims
        return {"sub": claims["sub"], "email": claims.get("email"), "name": claims.get("name")}


def _origin(url):
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _b64decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
