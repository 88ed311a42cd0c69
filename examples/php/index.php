<?php
// A PHP origin behind kontur-gate: every page knows who the user is.
//
//   GATE_URL=https://site.example ORIGIN_URL=https://origin.example php -S 127.0.0.1:8000 index.php
// (or any PHP server with these environment variables). JWKS_CACHE_DIR, when set, is a directory
// only this application's user may write (created 0700), where the gate's keys are kept between
// requests; unset, they are fetched for every request.

declare(strict_types=1);

require __DIR__ . '/GateIdentity.php';

$cacheDir = getenv('JWKS_CACHE_DIR');
$gate = new GateIdentity((string) getenv('GATE_URL'), (string) getenv('ORIGIN_URL'), $cacheDir === false || $cacheDir === '' ? null : $cacheDir);
header('Content-Type: application/json; charset=utf-8');
try {
    $user = $gate->verify($_SERVER['REQUEST_METHOD'], $_SERVER['REQUEST_URI'], $_SERVER['HTTP_X_AUTH_ASSERTION'] ?? null);
} catch (NotVerified $error) {
    http_response_code(401);
    echo json_encode(['error' => 'unauthenticated', 'reason' => $error->getMessage()], JSON_UNESCAPED_UNICODE);
    return;
}

echo json_encode($user + [
    // The plain headers, for comparison: trustworthy only when nothing but the gate reaches this app.
    'header_user' => $_SERVER['HTTP_X_FORWARDED_USER'] ?? null,
    'header_name' => GateIdentity::decodeName($_SERVER['HTTP_X_FORWARDED_NAME'] ?? null),
], JSON_UNESCAPED_UNICODE);
