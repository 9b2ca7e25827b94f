<?php
// Push to a uid and to a group, and read the group's presence, with GatewayWorker's own
// Gateway:: calls (clients/php): only the two settings changed, where $registerAddress was.
//
//   GATEWAY_URL=https://<id>.lambda-url.<region>.on.aws/ GATEWAY_SECRET=<the ApiSecret> \
//     php notify.php alice room-1
require __DIR__ . '/../../../clients/php/src/Gateway.php';

use GatewayWorker\Lib\Gateway;

Gateway::$registerAddress = getenv('GATEWAY_URL');
Gateway::$secretKey = getenv('GATEWAY_SECRET');

[, $uid, $group] = $argv;
Gateway::sendToUid($uid, json_encode(['type' => 'notice', 'text' => 'your order shipped']));
Gateway::sendToGroup($group, 'the room hears this');
echo json_encode([
    'connections' => Gateway::getClientIdCountByGroup($group),
    'uids' => array_values(Gateway::getUidListByGroup($group)),
]), "\n";
