<?php
/**
 * Serves an unmodified GatewayWorker Events.php to the functions' forwarded events
 * (shared::forward, the application `php`): what BusinessWorker did, over HTTP.
 *
 *     EVENTS_PHP=path/to/Events.php EVENTS_SECRET=… GATEWAY_URL=… GATEWAY_SECRET=… \
 *         php -S 127.0.0.1:8090 clients/php/runner.php
 *
 * Each request is one event, signed with EVENTS_SECRET (the server API's scheme). Before the
 * callback: $_SESSION is the connection's session, $_SERVER's REMOTE_ADDR, REMOTE_PORT,
 * GATEWAY_ADDR, GATEWAY_PORT and GATEWAY_CLIENT_ID are set, and Gateway:: reaches the server API
 * (GATEWAY_URL, GATEWAY_SECRET) with the event's client as the current one. After it, the answer
 * carries $_SESSION as the callback left it. An exception is logged, as BusinessWorker logs it,
 * and the client's connection is left be (the answer is 500: the session is not saved). What the
 * handler prints goes to PHP's error log. Give it a secret of its own (EVENTS_SECRET, 16
 * characters or more), not the server API's: it accepts an event signed within 5 minutes, and
 * keeps no record of the ones it has seen.
 */

require __DIR__ . '/src/Gateway.php';

use GatewayWorker\Lib\Gateway;

function answer(int $status, $body): void
{
    http_response_code($status);
    header('content-type: application/json');
    echo json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
}

$secret = (string)getenv('EVENTS_SECRET');
if (strlen($secret) < 16) {
    // An empty key would let anyone sign events: refuse to serve rather than accept them.
    error_log('runner.php: EVENTS_SECRET is unset or shorter than 16 characters; refusing every event');
    answer(500, ['error' => 'the runner has no EVENTS_SECRET']);
    return;
}
$body = file_get_contents('php://input');
$header = $_SERVER['HTTP_X_GATEWAY_SIGNATURE'] ?? '';
if (!preg_match('/^t=(\d+),v1=([0-9a-fA-F]{64})$/', $header, $m)
    || !hash_equals(hash_hmac('sha256', "$m[1].$body", $secret), strtolower($m[2]))
    || abs(time() - (int)$m[1]) > 300) {
    answer(401, ['error' => 'unsigned, badly signed or stale event']);
    return;
}
$event = json_decode($body, true);
if (!is_array($event) || !isset($event['event'], $event['client_id'])) {
    answer(400, ['error' => 'not a forwarded event']);
    return;
}

Gateway::$registerAddress = getenv('GATEWAY_URL');
Gateway::$secretKey = getenv('GATEWAY_SECRET');
Gateway::$currentClientId = $event['client_id'];

$_SESSION = is_array($event['session'] ?? null) ? $event['session'] : [];
$_SERVER['REMOTE_ADDR'] = $event['server']['REMOTE_ADDR'] ?? '';
$_SERVER['REMOTE_PORT'] = 0;
$_SERVER['GATEWAY_ADDR'] = '';
$_SERVER['GATEWAY_PORT'] = 0;
$_SERVER['GATEWAY_CLIENT_ID'] = $event['client_id'];

// What the handler prints (an `echo`, a displayed warning) goes to the log, not into the answer,
// as BusinessWorker's stdout went to its log.
ob_start();
require_once getenv('EVENTS_PHP');

$client_id = $event['client_id'];
try {
    switch ($event['event']) {
        case 'connect':
            if (method_exists('Events', 'onConnect')) {
                Events::onConnect($client_id);
            }
            break;
        case 'message':
            Events::onMessage($client_id, $event['message'] ?? '');
            break;
        case 'close':
            if (method_exists('Events', 'onClose')) {
                Events::onClose($client_id);
            }
            break;
    }
} catch (\Throwable $e) {
    $printed = ob_get_clean();
    if ($printed !== '') {
        error_log(rtrim($printed));
    }
    error_log("Events::on{$event['event']} for $client_id: " . get_class($e) . ': ' . $e->getMessage());
    answer(500, ['error' => 'the handler threw; see the backend\'s log']);
    return;
}
$printed = ob_get_clean();
if ($printed !== '') {
    error_log(rtrim($printed));
}
answer(200, ['session' => (object)$_SESSION]);
