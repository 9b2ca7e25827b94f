<?php
/**
 * A chat written as GatewayWorker applications are (login into a room, say to the room or to
 * one client, logout on close, the name and room in $_SESSION), served unmodified by
 * clients/php/runner.php behind the functions (tests/events_php.rs).
 */

use GatewayWorker\Lib\Gateway;

class Events
{
    public static function onConnect($client_id)
    {
        Gateway::sendToCurrentClient(json_encode(['type' => 'welcome', 'client_id' => $client_id]));
    }

    public static function onMessage($client_id, $message)
    {
        // As workerman-chat's Events.php does: BusinessWorker logged what a handler printed.
        echo "client:{$_SERVER['REMOTE_ADDR']}:{$_SERVER['REMOTE_PORT']} gateway:{$_SERVER['GATEWAY_ADDR']}:{$_SERVER['GATEWAY_PORT']} client_id:$client_id session:" . json_encode($_SESSION) . " onMessage:$message\n";
        $data = json_decode($message, true);
        if (!is_array($data) || !isset($data['type'])) {
            return;
        }
        switch ($data['type']) {
            case 'login':
                $room = $data['room'];
                $_SESSION['room'] = $room;
                $_SESSION['name'] = $data['name'];
                Gateway::joinGroup($client_id, $room);
                $clients = [];
                foreach (Gateway::getClientSessionsByGroup($room) as $id => $session) {
                    $clients[$id] = $session['name'] ?? null;
                }
                // Its own session is saved once this callback returns.
                $clients[$client_id] = $data['name'];
                $login = ['type' => 'login', 'client_id' => $client_id, 'name' => $data['name']];
                Gateway::sendToGroup($room, json_encode($login), $client_id);
                Gateway::sendToCurrentClient(json_encode(['type' => 'joined', 'room' => $room, 'clients' => $clients]));
                return;
            case 'say':
                if (!isset($_SESSION['room'])) {
                    throw new \Exception("$client_id said something before logging in");
                }
                $said = ['type' => 'say', 'from' => $client_id, 'name' => $_SESSION['name'], 'text' => $data['text']];
                if (($data['to'] ?? 'all') === 'all') {
                    Gateway::sendToGroup($_SESSION['room'], json_encode($said));
                } else {
                    $said['private'] = true;
                    Gateway::sendToClient($data['to'], json_encode($said));
                    Gateway::sendToCurrentClient(json_encode($said));
                }
                return;
        }
    }

    public static function onClose($client_id)
    {
        if (isset($_SESSION['room'])) {
            $logout = ['type' => 'logout', 'client_id' => $client_id, 'name' => $_SESSION['name']];
            Gateway::sendToGroup($_SESSION['room'], json_encode($logout));
        }
    }
}
