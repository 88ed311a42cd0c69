<?php
// Who is the user? — for a PHP origin behind kontur-gate, with PHP's own openssl and sodium.
//
// The gate sends every request it lets through with the user's identity in headers and a signed
// X-Auth-Assertion (a 60-second JWT, ES256 or EdDSA). When the origin can be reached other than
// through the gate, only the assertion is proof: it is verified here against the gate's public
// keys (/_auth/jwks.json), for this origin (aud) and, when the assertion names one, for this very
// request (htm, htu: the gate's default ASSERTION_MODE=request; ASSERTION_MODE=session assertions
// carry none).
//
// The gate's keys decide who the user is, so they are kept only where nobody else can change them:
// in memory, or in a cache directory that belongs to this application alone (see __construct).

declare(strict_types=1);

final class NotVerified extends RuntimeException
{
}

final class GateIdentity
{
    private const LEEWAY = 5;
    /** Seconds before an unknown kid may make the JWKS be fetched again. */
    private const REFETCH_AFTER = 30;
    private string $issuer;
    private string $audience;
    private ?string $cacheDir;
    /** @var array<string, array{keys: array<string, array>, fetchedAt: int}> the in-memory cache, per issuer */
    private static array $memory = [];

    /**
     * @param string      $gateUrl   the site's public URL where the gate runs (https://site.example)
     * @param string      $originUrl this app's URL as the gate forwards to it (the gate's ORIGIN_URL)
     * @param string|null $cacheDir  where the gate's JWKS is kept between requests: a directory only
     *   this application's user can write (created 0700 when missing). The directory must be this
     *   user's, mode 0700, not a symlink; the file in it this user's and not writable by group or
     *   others — anything else is refused, since a JWKS planted there would let its author sign in
     *   as anyone. null: the keys are kept in memory, for this PHP process (under php-fpm or
     *   `php -S` that is one request, so the JWKS is fetched for every request).
     */
    public function __construct(string $gateUrl, string $originUrl, ?string $cacheDir = null)
    {
        $this->issuer = self::origin($gateUrl);
        $this->audience = self::origin($originUrl);
        if ($cacheDir !== null && !function_exists('posix_geteuid')) {
            throw new InvalidArgumentException('a JWKS cache directory needs the posix extension, to check who owns it');
        }
        $this->cacheDir = $cacheDir === null ? null : rtrim($cacheDir, '/');
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
            $key['kty'] === 'EC' && ($key['crv'] ?? '') === 'P-256' && ($header['alg'] ?? '') === 'ES256' => strlen($signature) === 64
                && openssl_verify($signed, self::derSignature($signature), self::ecPem($key), OPENSSL_ALGO_SHA256) === 1,
            $key['kty'] === 'OKP' && ($key['crv'] ?? '') === 'Ed25519' && ($header['alg'] ?? '') === 'EdDSA' => strlen($signature) === SODIUM_CRYPTO_SIGN_BYTES
                && strlen(self::b64($key['x'])) === SODIUM_CRYPTO_SIGN_PUBLICKEYBYTES
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
            // Checked when the assertion names them (ASSERTION_MODE=request, the gate's default); an
            // ASSERTION_MODE=session assertion names no request and is valid for any within its lifetime.
            array_key_exists('htm', $claims) && $claims['htm'] !== $method => throw new NotVerified('assertion made for another method'),
            array_key_exists('htu', $claims) && $claims['htu'] !== $expected => throw new NotVerified('assertion made for another URL, not ' . $expected),
            default => null,
        };
        // The gate marks an address the provider has not verified with email_verified: false; such an
        // address is not the user's proven e-mail, so it is not handed on as one.
        $email = ($claims['email_verified'] ?? null) === false ? null : ($claims['email'] ?? null);
        return ['sub' => $claims['sub'], 'email' => $email, 'name' => $claims['name'] ?? null];
    }

    /** The gate's key with this kid; the JWKS is fetched again for an unknown kid, at most every 30 s. */
    private function key(string $kid): array
    {
        ['keys' => $keys, 'fetchedAt' => $fetchedAt] = $this->cached();
        if (!isset($keys[$kid]) && time() - $fetchedAt > self::REFETCH_AFTER) {
            $keys = $this->fetchKeys();
            $this->remember($keys);
        }
        if (!isset($keys[$kid])) {
            throw new NotVerified("no key \"$kid\" in the gate's JWKS");
        }
        return $keys[$kid];
    }

    /** @return array<string, array> the gate's public keys by kid, as /_auth/jwks.json lists them now */
    private function fetchKeys(): array
    {
        $context = stream_context_create(['http' => ['timeout' => 5]]);
        $handle = @fopen($this->issuer . '/_auth/jwks.json', 'rb', false, $context);
        $body = $handle === false ? false : self::body($handle);
        $set = $body === false ? null : json_decode($body, true);
        if (!is_array($set['keys'] ?? null)) {
            throw new NotVerified("the gate's JWKS cannot be fetched");
        }
        $keys = [];
        foreach ($set['keys'] as $jwk) {
            if (is_array($jwk) && is_string($jwk['kid'] ?? null) && isset($jwk['kty'], $jwk['x'])) {
                $keys[$jwk['kid']] = $jwk;
            }
        }
        return $keys;
    }

    /**
     * The body of an HTTP response opened with fopen(). A server may keep the connection open after
     * the body whatever the request says (wrangler dev's workerd does): read Content-Length bytes
     * instead of waiting for the connection to close, which would cost the whole timeout.
     *
     * @param resource $handle
     */
    private static function body($handle): string|false
    {
        $length = -1;
        // The headers of every response, a redirect's before the last's: each status line starts over.
        foreach (stream_get_meta_data($handle)['wrapper_data'] ?? [] as $header) {
            if (!is_string($header)) {
                continue;
            }
            if (str_starts_with($header, 'HTTP/')) {
                $length = -1;
            } elseif (preg_match('/^content-length:\s*(\d+)\s*$/i', $header, $match) === 1) {
                $length = (int) $match[1];
            }
        }
        $body = stream_get_contents($handle, $length);
        fclose($handle);
        return $body;
    }

    /** @return array{keys: array<string, array>, fetchedAt: int} what the cache holds (nothing: fetchedAt 0) */
    private function cached(): array
    {
        $empty = ['keys' => [], 'fetchedAt' => 0];
        if ($this->cacheDir === null) {
            return self::$memory[$this->issuer] ?? $empty;
        }
        $file = $this->trustedCacheDir() . '/' . $this->cacheName();
        if (!file_exists($file) && !is_link($file)) {
            return $empty;
        }
        if (is_link($file)) {
            throw new NotVerified("the JWKS cache $file is a symlink: refusing it");
        }
        $handle = @fopen($file, 'rb');
        if ($handle === false) {
            throw new NotVerified("the JWKS cache $file cannot be read");
        }
        // Judged on the open handle, so the file judged is the file read.
        $stat = fstat($handle);
        if ($stat === false || ($stat['mode'] & 0170000) !== 0100000 || $stat['uid'] !== posix_geteuid() || ($stat['mode'] & 0022) !== 0) {
            fclose($handle);
            throw new NotVerified("the JWKS cache $file is not a file of this user's that only it can write: refusing it");
        }
        $keys = json_decode((string) stream_get_contents($handle), true);
        fclose($handle);
        // Our own file, unreadable only if it was cut short: fetch again and replace it.
        return is_array($keys) ? ['keys' => $keys, 'fetchedAt' => $stat['mtime']] : $empty;
    }

    /** @param array<string, array> $keys */
    private function remember(array $keys): void
    {
        if ($this->cacheDir === null) {
            self::$memory[$this->issuer] = ['keys' => $keys, 'fetchedAt' => time()];
            return;
        }
        $dir = $this->trustedCacheDir();
        // Written aside (0600) and renamed over the cache, so no reader ever sees half a file.
        $temporary = $dir . '/.' . $this->cacheName() . '.' . bin2hex(random_bytes(8));
        $handle = @fopen($temporary, 'xb');
        if ($handle === false || !chmod($temporary, 0600) || fwrite($handle, (string) json_encode($keys)) === false
            || !fclose($handle) || !rename($temporary, $dir . '/' . $this->cacheName())) {
            @unlink($temporary);
            throw new NotVerified("the JWKS cache in $dir cannot be written");
        }
    }

    /** The cache directory, created 0700 when missing; refused unless it is this user's and 0700. */
    private function trustedCacheDir(): string
    {
        $dir = (string) $this->cacheDir;
        if (!file_exists($dir) && !is_link($dir) && !@mkdir($dir, 0700, true) && !is_dir($dir)) {
            throw new NotVerified("the JWKS cache directory $dir cannot be created");
        }
        $stat = @lstat($dir);
        if ($stat === false || ($stat['mode'] & 0170000) !== 0040000) {
            throw new NotVerified("the JWKS cache directory $dir is not a directory (a symlink is refused too)");
        }
        if ($stat['uid'] !== posix_geteuid() || ($stat['mode'] & 0777) !== 0700) {
            throw new NotVerified(sprintf('the JWKS cache directory %s must belong to this user with mode 0700 (it has %04o): refusing it', $dir, $stat['mode'] & 0777));
        }
        return $dir;
    }

    private function cacheName(): string
    {
        return 'jwks-' . md5($this->issuer) . '.json';
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
