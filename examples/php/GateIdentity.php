<?php
// Who is the user? — for a PHP origin behind kontur-gate, with PHP's own openssl and sodium.
//
// The gate sends every request it lets through with the user's identity in headers and a signed
// X-Auth-Assertion (a 60-second JWT, ES256 or EdDSA). When the origin can be reached other than
// through the gate, only the assertion is proof: it is verified here against the gate's public
// keys (/_auth/jwks.json), for this origin (aud), for this very request (htm, htu).

declare(strict_types=1);

final class NotVerified extends RuntimeException
{
}

final class GateIdentity
{
    private const LEEWAY = 5;
    private string $issuer;
    private string $audience;
    private string $cacheFile;

    /**
     * @param string $gateUrl   the site's public URL where the gate runs (https://site.example)
     * @param string $originUrl this app's URL as the gate forwards to it (the gate's ORIGIN_URL)
     */
    public function __construct(string $gateUrl, string $originUrl)
    {
        $this->issuer = self::origin($gateUrl);
        $this->audience = self::origin($originUrl);
        $this->cacheFile = sys_get_temp_dir() . '/kontur-gate-jwks-' . md5($this->issuer) . '.json';
    }

    /** X-Forwarded-Name: ASCII without % comes as is, anything else UTF-8 percent-encoded. */
    public static function decodeName(?string $raw): ?string
    {
        return $raw === null ? null : rawurldecode($raw);
    }

    /**
     * The verified user of this request: ['sub' => …, 'email' => …, 'name' => …].
     * @throws NotVerified
     */
    public function verify(string $method, string $requestUri, ?string $token): array
    {
        if ($token === null || $token === '') {
            throw new NotVerified('no X-Auth-Assertion: the request did not come through the gate');
        }
        $parts = explode('.', $token);
        if (count($parts) !== 3) {
            throw new NotVerified('X-Auth-Assertion is not a JWS');
        }
        $header = self::json($parts[0]);
        if (isset($header['crit'])) {
            throw new NotVerified('X-Auth-Assertion has critical header parameters this verifier does not know');
        }
        $key = $this->key((string) ($header['kid'] ?? ''));
        $signed = $parts[0] . '.' . $parts[1];
        $signature = self::b64($parts[2]);
        // The algorithm must match the key's type: never let the token choose how it is checked.
        $valid = match (true) {
            $key['kty'] === 'EC' && ($header['alg'] ?? '') === 'ES256' => strlen($signature) === 64
                && openssl_verify($signed, self::derSignature($signature), self::ecPem($key), OPENSSL_ALGO_SHA256) === 1,
            $key['kty'] === 'OKP' && ($header['alg'] ?? '') === 'EdDSA' => strlen($signature) === SODIUM_CRYPTO_SIGN_BYTES
                && sodium_crypto_sign_verify_detached($signature, $signed, self::b64($key['x'])),
            default => false,
        };
        if (!$valid) {
            throw new NotVerified('X-Auth-Assertion signature is not valid');
        }

        $claims = self::json($parts[1]);
        $now = time();
        $audiences = (array) ($claims['aud'] ?? []);
        $expected = $this->audience . $requestUri;
        match (true) {
            ($claims['iss'] ?? null) !== $this->issuer => throw new NotVerified('assertion from another issuer'),
            !in_array($this->audience, $audiences, true) => throw new NotVerified('assertion is not for this origin'),
            !is_string($claims['sub'] ?? null) || !is_int($claims['exp'] ?? null) || !is_int($claims['iat'] ?? null)
                => throw new NotVerified('assertion lacks sub, exp or iat'),
            $claims['exp'] < $now - self::LEEWAY => throw new NotVerified('assertion expired'),
            $claims['iat'] > $now + self::LEEWAY || $now - $claims['iat'] > 60 + self::LEEWAY
                => throw new NotVerified('assertion is not fresh'),
            isset($claims['nbf']) && $claims['nbf'] > $now + self::LEEWAY => throw new NotVerified('assertion not valid yet'),
            // Made for this request: not one replayed from another method or URL within its 60 seconds.
            ($claims['htm'] ?? null) !== $method => throw new NotVerified("assertion made for another method"),
            ($claims['htu'] ?? null) !== $expected => throw new NotVerified('assertion made for another URL, not ' . $expected),
            default => null,
        };
        return ['sub' => $claims['sub'], 'email' => $claims['email'] ?? null, 'name' => $claims['name'] ?? null];
    }

    /** The gate's key with this kid; the JWKS is fetched again for an unknown kid, at most every 30 s. */
    private function key(string $kid): array
    {
        $keys = is_file($this->cacheFile) ? json_decode((string) file_get_contents($this->cacheFile), true) : null;
        if (!isset($keys[$kid]) && (!is_file($this->cacheFile) || time() - filemtime($this->cacheFile) > 30)) {
            $context = stream_context_create(['http' => ['timeout' => 5]]);
            $body = @file_get_contents($this->issuer . '/_auth/jwks.json', false, $context);
            $set = $body === false ? null : json_decode($body, true);
            if (!is_array($set['keys'] ?? null)) {
                throw new NotVerified("the gate's JWKS cannot be fetched");
            }
            $keys = [];
            foreach ($set['keys'] as $jwk) {
                if (isset($jwk['kid'], $jwk['kty'], $jwk['x'])) {
                    $keys[$jwk['kid']] = $jwk;
                }
            }
            file_put_contents($this->cacheFile, json_encode($keys), LOCK_EX);
        }
        if (!isset($keys[$kid])) {
            throw new NotVerified("no key \"$kid\" in the gate's JWKS");
        }
        return $keys[$kid];
    }

    /** SubjectPublicKeyInfo of a P-256 key, as PEM. */
    private static function ecPem(array $jwk): string
    {
        $point = "\x04" . str_pad(self::b64($jwk['x']), 32, "\0", STR_PAD_LEFT) . str_pad(self::b64($jwk['y'] ?? ''), 32, "\0", STR_PAD_LEFT);
        $der = hex2bin('3059301306072a8648ce3d020106082a8648ce3d030107034200') . $point;
        return "-----BEGIN PUBLIC KEY-----\n" . chunk_split(base64_encode($der), 64, "\n") . "-----END PUBLIC KEY-----\n";
    }

    /** JWS ECDSA signatures are r‖s; openssl wants DER SEQUENCE { INTEGER r, INTEGER s }. */
    private static function derSignature(string $raw): string
    {
        $integer = static function (string $bytes): string {
            $bytes = ltrim($bytes, "\0");
            if ($bytes === '' || ord($bytes[0]) > 0x7f) {
                $bytes = "\0" . $bytes;
            }
            return "\x02" . chr(strlen($bytes)) . $bytes;
        };
        $body = $integer(substr($raw, 0, 32)) . $integer(substr($raw, 32));
        return "\x30" . chr(strlen($body)) . $body;
    }

    private static function json(string $segment): array
    {
        $value = json_decode(self::b64($segment), true);
        if (!is_array($value)) {
            throw new NotVerified('X-Auth-Assertion is not JSON');
        }
        return $value;
    }

    private static function b64(string $text): string
    {
        $bytes = base64_decode(strtr($text, '-_', '+/'), true);
        if ($bytes === false) {
            throw new NotVerified('X-Auth-Assertion is not base64url');
        }
        return $bytes;
    }

    private static function origin(string $url): string
    {
        $parts = parse_url($url);
        if (!isset($parts['scheme'], $parts['host'])) {
            throw new InvalidArgumentException("\"$url\" is not an absolute URL");
        }
        return $parts['scheme'] . '://' . $parts['host'] . (isset($parts['port']) ? ':' . $parts['port'] : '');
    }
}
