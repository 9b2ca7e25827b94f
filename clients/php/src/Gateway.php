<?php
/**
 * GatewayWorker's `Gateway` class for a web backend (what walkor/GatewayClient is), over the
 * serverless stack's server API (docs/server-api.md): the same static methods, arguments and
 * return shapes, so that `Gateway::sendToUid($uid, $msg)` works after changing only the two
 * settings below. Standard library only (hash_hmac, json, the http stream wrapper).
 *
 *     Gateway::$registerAddress = 'https://<id>.lambda-url.<region>.on.aws/';  // the ApiUrl output
 *     Gateway::$secretKey = '<the ApiSecret secret>';
 *
 * The calls that would read every connection or every group on each call
 * (getAllClientIdList, getAllClientSessions() without a group, getAllGroup*) are not offered by
 * the server API (docs/porting.md says why); here they throw. sendToCurrentClient and
 * closeCurrentClient work inside an Events.php served by runner.php, which sets the current
 * client.
 */

namespace GatewayWorker\Lib;

class Gateway
{
    /** The server API's URL (the stack's ApiUrl output), where GatewayWorker's register address was. */
    public static $registerAddress = '';

    /** The server API's secret, which signs every request (HMAC-SHA256). */
    public static $secretKey = '';

    /** Seconds a request may take. */
    public static $timeout = 10;

    /** The client whose event is being handled (runner.php sets it), for sendToCurrentClient. */
    public static $currentClientId = null;

    /** walkor/GatewayClient's settings, accepted and unused: each call is one HTTPS request. */
    public static $connectTimeout = 3;
    public static $persistentConnection = false;

    /** The most names one call's list may hold, and the most calls one request may carry. */
    const MAX_NAMES = 100;
    const MAX_CALLS = 25;

    /**
     * Runs calls in one signed request; their results, in order. A refused request or a failed
     * call throws, as GatewayWorker throws when it cannot reach a gateway.
     */
    public static function call(array ...$calls): array
    {
        if (count($calls) > static::MAX_CALLS) {
            $results = [];
            foreach (array_chunk($calls, static::MAX_CALLS) as $chunk) {
                $results = array_merge($results, static::call(...$chunk));
            }
            return $results;
        }
        // A nonce: two identical requests in one second would otherwise look like a replay.
        $body = json_encode(['nonce' => bin2hex(random_bytes(8)), 'calls' => $calls], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
        $t = time();
        $v1 = hash_hmac('sha256', "$t.$body", static::$secretKey);
        $context = stream_context_create(['http' => [
            'method' => 'POST',
            'header' => "content-type: application/json\r\nx-gateway-signature: t=$t,v1=$v1\r\n",
            'content' => $body,
            'timeout' => static::$timeout,
            'ignore_errors' => true,
        ]]);
        $answer = @file_get_contents(static::$registerAddress, false, $context);
        if ($answer === false) {
            throw new \Exception('the server API at ' . static::$registerAddress . ' could not be reached');
        }
        $status = 0;
        foreach ($http_response_header ?? [] as $line) {
            if (preg_match('#^HTTP/\S+ (\d{3})#', $line, $m)) {
                $status = (int)$m[1];
            }
        }
        $decoded = json_decode($answer, true);
        if ($status !== 200 || !isset($decoded['results'])) {
            $why = $decoded['error']['message'] ?? $answer;
            throw new \Exception("the server API refused the request ($status): $why");
        }
        foreach ($decoded['results'] as $result) {
            if (isset($result['error'])) {
                throw new \Exception('a server API call failed: ' . $result['error']['message']);
            }
        }
        return $decoded['results'];
    }

    private static function one(array $call): array
    {
        return static::call($call)[0];
    }

    /** A string or list of names, as a list. */
    private static function names($names): array
    {
        return array_values(array_map('strval', is_array($names) ? $names : [$names]));
    }

    /** The sends of `$data` to `$names`, at most MAX_NAMES a call. */
    private static function sends(string $one, string $many, $names, $data, array $exclude = []): array
    {
        $calls = [];
        foreach (array_chunk(static::names($names), static::MAX_NAMES) as $chunk) {
            $to = count($chunk) === 1 ? [$one => $chunk[0]] : [$many => $chunk];
            $calls[] = ['call' => 'send', 'to' => $to, 'data' => (string)$data, 'exclude' => $exclude];
        }
        return $calls;
    }

    public static function sendToAll($message, $client_id_array = null, $exclude_client_id = null, $raw = false)
    {
        $exclude = $exclude_client_id === null ? [] : static::names($exclude_client_id);
        if ($client_id_array === null) {
            static::one(['call' => 'send', 'to' => ['all' => true], 'data' => (string)$message, 'exclude' => $exclude]);
        } elseif ($client_id_array) {
            static::call(...static::sends('client', 'clients', $client_id_array, $message, $exclude));
        }
    }

    public static function sendToClient($client_id, $message, $raw = false)
    {
        return static::one(['call' => 'send', 'to' => ['client' => (string)$client_id], 'data' => (string)$message])['delivered'] > 0;
    }

    public static function sendToCurrentClient($message, $raw = false)
    {
        if (static::$currentClientId === null) {
            throw new \Exception('sendToCurrentClient outside an event: there is no current client');
        }
        return static::sendToClient(static::$currentClientId, $message);
    }

    public static function closeCurrentClient($message = null)
    {
        if (static::$currentClientId === null) {
            throw new \Exception('closeCurrentClient outside an event: there is no current client');
        }
        static::closeClient(static::$currentClientId, $message);
    }

    public static function destoryCurrentClient()
    {
        static::closeCurrentClient();
    }

    public static function sendToUid($uid, $message, $raw = false)
    {
        if ($uid !== [] && $uid !== null) {
            static::call(...static::sends('uid', 'uids', $uid, $message));
        }
    }

    public static function sendToGroup($group, $message, $exclude_client_id = null, $raw = false)
    {
        $exclude = $exclude_client_id === null ? [] : static::names($exclude_client_id);
        if ($group !== [] && $group !== null) {
            static::call(...static::sends('group', 'groups', $group, $message, $exclude));
        }
    }

    public static function isOnline($client_id)
    {
        return (int)static::one(['call' => 'online', 'client' => (string)$client_id])['online'];
    }

    public static function isUidOnline($uid)
    {
        return (int)static::one(['call' => 'online', 'uid' => (string)$uid])['online'];
    }

    public static function getClientIdByUid($uid)
    {
        return static::one(['call' => 'online', 'uid' => (string)$uid])['connections'];
    }

    public static function getUidByClientId($client_id)
    {
        return static::one(['call' => 'uid', 'client' => (string)$client_id])['uid'];
    }

    public static function getClientIdListByGroup($group)
    {
        $calls = array_map(fn ($g) => ['call' => 'members', 'group' => $g], static::names($group));
        $ids = [];
        foreach (static::call(...$calls) as $result) {
            foreach ($result['connections'] as $id) {
                $ids[$id] = $id;
            }
        }
        return $ids;
    }

    public static function getClientIdCountByGroup($group = '')
    {
        $call = $group === '' ? ['call' => 'presence'] : ['call' => 'presence', 'group' => (string)$group];
        return static::one($call)['connections'];
    }

    public static function getClientCountByGroup($group = '')
    {
        return static::getClientIdCountByGroup($group);
    }

    public static function getAllClientIdCount()
    {
        return static::getClientIdCountByGroup('');
    }

    public static function getAllClientCount()
    {
        return static::getClientIdCountByGroup('');
    }

    public static function getUidListByGroup($group)
    {
        $calls = array_map(fn ($g) => ['call' => 'presence', 'group' => $g], static::names($group));
        $uids = [];
        foreach (static::call(...$calls) as $result) {
            foreach ($result['uids'] as $uid) {
                $uids[$uid] = $uid;
            }
        }
        return $uids;
    }

    public static function getUidCountByGroup($group)
    {
        return count(static::getUidListByGroup($group));
    }

    public static function getAllUidList()
    {
        $uids = static::one(['call' => 'presence'])['uids'];
        return array_combine($uids, $uids) ?: [];
    }

    public static function getAllUidCount()
    {
        return count(static::getAllUidList());
    }

    public static function getClientSessionsByGroup($group)
    {
        return static::one(['call' => 'sessions', 'group' => (string)$group])['sessions'];
    }

    public static function getClientInfoByGroup($group)
    {
        return static::getClientSessionsByGroup($group);
    }

    public static function getAllClientSessions($group = '')
    {
        if ($group === '') {
            throw new \Exception('getAllClientSessions() without a group would read every connection: not offered (docs/porting.md)');
        }
        return static::getClientSessionsByGroup($group);
    }

    public static function getAllClientInfo($group = '')
    {
        return static::getAllClientSessions($group);
    }

    public static function getAllClientIdList()
    {
        throw new \Exception('getAllClientIdList() would read every connection: not offered (docs/porting.md)');
    }

    public static function getAllGroupIdList()
    {
        throw new \Exception('getAllGroupIdList() would scan the whole table: not offered (docs/porting.md)');
    }

    public static function closeClient($client_id, $message = null)
    {
        $calls = [];
        if ($message !== null) {
            $calls[] = ['call' => 'send', 'to' => ['client' => (string)$client_id], 'data' => (string)$message];
        }
        $calls[] = ['call' => 'kick', 'client' => (string)$client_id];
        static::call(...$calls);
    }

    public static function destoryClient($client_id)
    {
        static::closeClient($client_id);
    }

    /** Replaces any uid the connection had, as GatewayWorker does (an unbind, then a bind). */
    public static function bindUid($client_id, $uid)
    {
        static::call(
            ['call' => 'unbind', 'client' => (string)$client_id],
            ['call' => 'bind', 'client' => (string)$client_id, 'uid' => (string)$uid]
        );
    }

    public static function unbindUid($client_id, $uid)
    {
        static::one(['call' => 'unbind', 'client' => (string)$client_id]);
    }

    public static function joinGroup($client_id, $group)
    {
        static::one(['call' => 'join', 'client' => (string)$client_id, 'group' => (string)$group]);
    }

    public static function leaveGroup($client_id, $group)
    {
        static::one(['call' => 'leave', 'client' => (string)$client_id, 'group' => (string)$group]);
    }

    public static function ungroup($group)
    {
        static::one(['call' => 'ungroup', 'group' => (string)$group]);
    }

    public static function setSession($client_id, array $session)
    {
        if ($client_id === static::$currentClientId) {
            // The current client's session is the one runner.php saves after the callback.
            $_SESSION = $session;
            return;
        }
        static::one(['call' => 'set_session', 'client' => (string)$client_id, 'session' => (object)$session]);
    }

    public static function updateSession($client_id, array $session)
    {
        if ($client_id === static::$currentClientId) {
            $_SESSION = array_replace_recursive((array)$_SESSION, $session);
            return;
        }
        static::one(['call' => 'update_session', 'client' => (string)$client_id, 'session' => (object)$session]);
    }

    public static function isUidsOnline($uids)
    {
        $uids = static::names($uids);
        $calls = array_map(fn ($uid) => ['call' => 'online', 'uid' => $uid], $uids);
        $online = [];
        foreach (static::call(...$calls) as $i => $result) {
            $online[$uids[$i]] = (int)$result['online'];
        }
        return $online;
    }

    public static function batchGetClientIdByUid($uids)
    {
        $uids = static::names($uids);
        $calls = array_map(fn ($uid) => ['call' => 'online', 'uid' => $uid], $uids);
        $ids = [];
        foreach (static::call(...$calls) as $i => $result) {
            $ids[$uids[$i]] = $result['connections'];
        }
        return $ids;
    }

    public static function batchGetClientIdCountByGroup(array $groups)
    {
        $groups = static::names($groups);
        $calls = array_map(fn ($group) => ['call' => 'presence', 'group' => $group], $groups);
        $counts = [];
        foreach (static::call(...$calls) as $i => $result) {
            $counts[$groups[$i]] = $result['connections'];
        }
        return $counts;
    }

    public static function getAllGroupUidCount()
    {
        throw new \Exception('getAllGroupUidCount() would scan the whole table: not offered (docs/porting.md)');
    }

    public static function getAllGroupUidList()
    {
        throw new \Exception('getAllGroupUidList() would scan the whole table: not offered (docs/porting.md)');
    }

    public static function getAllGroupClientIdList()
    {
        throw new \Exception('getAllGroupClientIdList() would scan the whole table: not offered (docs/porting.md)');
    }

    public static function getAllGroupClientIdCount()
    {
        throw new \Exception('getAllGroupClientIdCount() would scan the whole table: not offered (docs/porting.md)');
    }

    public static function setSocketSession($client_id, $session_str)
    {
        throw new \Exception('setSocketSession() is the framework\'s own: runner.php saves $_SESSION');
    }

    public static function getSession($client_id)
    {
        if ($client_id === static::$currentClientId) {
            return $_SESSION;
        }
        return static::one(['call' => 'session', 'client' => (string)$client_id])['session'];
    }
}

// walkor/GatewayClient's name for the same class, which web backends import.
class_alias(Gateway::class, 'GatewayClient\\Gateway');
