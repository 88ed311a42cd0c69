// Who is the user? — for a Go origin behind kontur-gate, with the standard library only.
//
// The gate sends every request it lets through with the user's identity in headers and a signed
// X-Auth-Assertion (a 60-second JWT, ES256 or EdDSA). When the origin can be reached other than
// through the gate, only the assertion is proof: it is verified here against the gate's public
// keys (/_auth/jwks.json), for this origin (aud) and, when the assertion names one, for this very
// request (htm, htu: the gate's default ASSERTION_MODE=request; ASSERTION_MODE=session assertions
// carry none).

package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Identity is the verified user of a request.
type Identity struct {
	Sub   string `json:"sub"`
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"` // raw UTF-8 inside the JWT
}

// GateVerifier checks X-Auth-Assertion. Issuer: the site's public URL where the gate runs;
// Audience: this app's URL origin as the gate forwards to it (the gate's ORIGIN_URL).
type GateVerifier struct {
	issuer   string
	audience string
	leeway   time.Duration
	client   *http.Client

	mu        sync.Mutex
	keys      map[string]crypto.PublicKey
	fetchedAt time.Time
}

// NewGateVerifier: gateURL like https://site.example, originURL like https://origin.example.
func NewGateVerifier(gateURL, originURL string) (*GateVerifier, error) {
	issuer, err := originOf(gateURL)
	if err != nil {
		return nil, err
	}
	audience, err := originOf(originURL)
	if err != nil {
		return nil, err
	}
	return &GateVerifier{issuer: issuer, audience: audience, leeway: 5 * time.Second, client: &http.Client{Timeout: 5 * time.Second}}, nil
}

// DecodeName decodes X-Forwarded-Name: printable ASCII without % comes as is, anything else is
// UTF-8 percent-encoded, so PathUnescape is right for both.
func DecodeName(raw string) string {
	if name, err := url.PathUnescape(raw); err == nil {
		return name
	}
	return raw
}

type assertionClaims struct {
	Iss           string          `json:"iss"`
	Aud           json.RawMessage `json:"aud"`
	Sub           string          `json:"sub"`
	Email         string          `json:"email"`
	EmailVerified *bool           `json:"email_verified"`
	Name          string          `json:"name"`
	Iat           *int64          `json:"iat"`
	Exp           *int64          `json:"exp"`
	Nbf           *int64          `json:"nbf"`
	// Raw, so that an absent claim (nil) is told apart from any value, null included.
	Htm json.RawMessage `json:"htm"`
	Htu json.RawMessage `json:"htu"`
}

// Verify returns the verified user of r, or why there is none.
func (v *GateVerifier) Verify(r *http.Request) (*Identity, error) {
	token := r.Header.Get("X-Auth-Assertion")
	if token == "" {
		return nil, errors.New("no X-Auth-Assertion: the request did not come through the gate")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("X-Auth-Assertion is not a JWS")
	}
	var header struct {
		Alg  string   `json:"alg"`
		Kid  string   `json:"kid"`
		Crit []string `json:"crit"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, err
	}
	if len(header.Crit) > 0 {
		return nil, errors.New("X-Auth-Assertion has critical header parameters this verifier does not know")
	}
	key, err := v.key(header.Kid)
	if err != nil {
		return nil, err
	}
	signature, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("X-Auth-Assertion signature is not base64url")
	}
	signed := []byte(parts[0] + "." + parts[1])
	// The algorithm must match the key's type: never let the token choose how it is checked.
	switch pub := key.(type) {
	case *ecdsa.PublicKey:
		digest := sha256.Sum256(signed)
		if header.Alg != "ES256" || len(signature) != 64 ||
			!ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(signature[:32]), new(big.Int).SetBytes(signature[32:])) {
			return nil, errors.New("X-Auth-Assertion signature is not valid")
		}
	case ed25519.PublicKey:
		if header.Alg != "EdDSA" || !ed25519.Verify(pub, signed, signature) {
			return nil, errors.New("X-Auth-Assertion signature is not valid")
		}
	default:
		return nil, errors.New("unsupported key type")
	}

	var claims assertionClaims
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, err
	}
	now := time.Now()
	switch {
	case claims.Iss != v.issuer:
		return nil, fmt.Errorf("assertion issued by %q, not %q", claims.Iss, v.issuer)
	case !audienceHas(claims.Aud, v.audience):
		return nil, fmt.Errorf("assertion is not for %q", v.audience)
	case claims.Sub == "" || claims.Exp == nil || claims.Iat == nil:
		return nil, errors.New("assertion lacks sub, exp or iat")
	case now.Add(-v.leeway).After(time.Unix(*claims.Exp, 0)):
		return nil, errors.New("assertion expired")
	case time.Unix(*claims.Iat, 0).After(now.Add(v.leeway)) || now.Sub(time.Unix(*claims.Iat, 0)) > 60*time.Second+v.leeway:
		return nil, errors.New("assertion is not fresh")
	case claims.Nbf != nil && time.Unix(*claims.Nbf, 0).After(now.Add(v.leeway)):
		return nil, errors.New("assertion not valid yet")
	// Made for this request: not one replayed from another method or URL within its 60 seconds.
	// Checked when the assertion names them (ASSERTION_MODE=request, the gate's default); an
	// ASSERTION_MODE=session assertion names no request and is valid for any within its lifetime.
	case !absentOrEqual(claims.Htm, r.Method):
		return nil, fmt.Errorf("assertion made for %s, not %s", claims.Htm, r.Method)
	case !absentOrEqual(claims.Htu, v.audience+r.RequestURI):
		return nil, fmt.Errorf("assertion made for %s, not %s", claims.Htu, v.audience+r.RequestURI)
	}
	identity := &Identity{Sub: claims.Sub, Email: claims.Email, Name: claims.Name}
	// The gate marks an address the provider has not verified with email_verified: false; such an
	// address is not the user's proven e-mail, so it is not handed on as one.
	if claims.EmailVerified != nil && !*claims.EmailVerified {
		identity.Email = ""
	}
	return identity, nil
}

// absentOrEqual: the claim is absent, or it is the string want.
func absentOrEqual(raw json.RawMessage, want string) bool {
	if raw == nil {
		return true
	}
	var value string
	return json.Unmarshal(raw, &value) == nil && value == want
}

// key returns the gate's public key with this kid, fetching the JWKS again when the kid is
// unknown (key rotation), at most every 30 seconds.
func (v *GateVerifier) key(kid string) (crypto.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if key, ok := v.keys[kid]; ok {
		return key, nil
	}
	if time.Since(v.fetchedAt) > 30*time.Second {
		keys, err := v.fetchKeys()
		if err != nil {
			return nil, err
		}
		v.keys, v.fetchedAt = keys, time.Now()
	}
	if key, ok := v.keys[kid]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("no key %q in the gate's JWKS", kid)
}

func (v *GateVerifier) fetchKeys() (map[string]crypto.PublicKey, error) {
	response, err := v.client.Get(v.issuer + "/_auth/jwks.json")
	if err != nil {
		return nil, fmt.Errorf("fetching the gate's JWKS: %w", err)
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the gate's JWKS: HTTP %d", response.StatusCode)
	}
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			Kid string `json:"kid"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(response.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("reading the gate's JWKS: %w", err)
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		switch {
		case errX != nil:
			continue
		case k.Kty == "EC" && k.Crv == "P-256":
			y, errY := base64.RawURLEncoding.DecodeString(k.Y)
			pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
			if errY == nil && pub.Curve.IsOnCurve(pub.X, pub.Y) {
				keys[k.Kid] = pub
			}
		case k.Kty == "OKP" && k.Crv == "Ed25519" && len(x) == ed25519.PublicKeySize:
			keys[k.Kid] = ed25519.PublicKey(x)
		}
	}
	return keys, nil
}

func decodeSegment(segment string, into interface{}) error {
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return errors.New("X-Auth-Assertion is not base64url")
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return errors.New("X-Auth-Assertion is not JSON")
	}
	return nil
}

func audienceHas(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, aud := range many {
			if aud == want {
				return true
			}
		}
	}
	return false
}

func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute URL", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}
