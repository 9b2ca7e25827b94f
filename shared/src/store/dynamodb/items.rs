//! What each item holds: records and members to and from DynamoDB's attribute maps.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::Key;
use crate::store::{ConnectionRecord, Member, StoreError};

/// An item's attributes, as the SDK gives them.
pub type Item = HashMap<String, AttributeValue>;

/// The TTL attribute of every item (`ttl` itself is a DynamoDB reserved word).
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// The item that puts a connection in a set.
pub(super) fn member_item(key: Key, record: &ConnectionRecord) -> Item {
    let mut item = key.item();
    item.insert(
        "connectionId".into(),
        AttributeValue::S(record.connection_id.clone()),
    );
    if let Some(uid) = &record.uid {
        item.insert("uid".into(), AttributeValue::S(uid.clone()));
    }
    item.insert(
        TTL_ATTRIBUTE.into(),
        AttributeValue::N(record.expires_at.to_string()),
    );
    item
}

/// The items `$connect` writes for a new connection (its own, its place in "all", its uid
/// binding, the groups it starts in). Public so that tools can seed a table in bulk (the benchmarks load 100,000).
pub fn new_connection_items(record: &ConnectionRecord) -> Vec<Item> {
    let id = &record.connection_id;
    let mut items = vec![
        connection_item(record),
        member_item(Key::all_member(id), record),
    ];
    if let Some(uid) = &record.uid {
        items.push(member_item(Key::uid_member(uid, id), record));
    }
    // Groups an application's `on_connect` joined.
    items.extend(record.groups.iter().map(|group| group_item(group, record)));
    items
}

/// The item that puts a connection in a group (what `join` writes beside updating `groups`).
pub fn group_item(group: &str, record: &ConnectionRecord) -> Item {
    member_item(Key::group_member(group, &record.connection_id), record)
}

/// [`group_item`] for a member that follows the group's joins and leaves.
pub(super) fn following_group_item(group: &str, record: &ConnectionRecord) -> Item {
    let mut item = group_item(group, record);
    item.insert(PRESENCE.into(), AttributeValue::Bool(true));
    item
}

/// The attribute of a group item that says its member follows joins and leaves.
pub(super) const PRESENCE: &str = "presence";

pub(super) fn connection_item(record: &ConnectionRecord) -> Item {
    let mut item = member_item(Key::connection(&record.connection_id), record);
    item.insert(
        "connectedAt".into(),
        AttributeValue::N(record.connected_at.to_string()),
    );
    if let Some(ip) = &record.source_ip {
        item.insert("sourceIp".into(), AttributeValue::S(ip.clone()));
    }
    if let Some(agent) = &record.user_agent {
        item.insert("userAgent".into(), AttributeValue::S(agent.clone()));
    }
    if let Some(session) = &record.session {
        item.insert("session".into(), AttributeValue::S(session.clone()));
    }
    if !record.groups.is_empty() {
        item.insert(
            "groups".into(),
            AttributeValue::Ss(record.groups.iter().cloned().collect()),
        );
    }
    item
}

pub(super) fn string(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub(super) fn number(item: &Item, name: &str) -> Result<i64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StoreError::Malformed(format!("{name} is missing or not a number")))
}

pub(super) fn record(item: &Item) -> Result<ConnectionRecord, StoreError> {
    Ok(ConnectionRecord {
        connection_id: string(item, "connectionId")
            .ok_or_else(|| StoreError::Malformed("a connection item has no connectionId".into()))?,
        connected_at: number(item, "connectedAt")?,
        source_ip: string(item, "sourceIp"),
        user_agent: string(item, "userAgent"),
        uid: string(item, "uid"),
        groups: item
            .get("groups")
            .and_then(|v| v.as_ss().ok())
            .map(|groups| groups.iter().cloned().collect())
            .unwrap_or_default(),
        expires_at: number(item, TTL_ATTRIBUTE)?,
        session: string(item, "session"),
    })
}

pub(super) fn member(item: &Item) -> Result<Member, StoreError> {
    Ok(Member {
        connection_id: string(item, "connectionId")
            .ok_or_else(|| StoreError::Malformed("a member item has no connectionId".into()))?,
        uid: string(item, "uid"),
        presence: matches!(item.get(PRESENCE), Some(AttributeValue::Bool(true))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sample_record as record;

    #[test]
    fn a_connection_item_reads_back_as_the_record_it_was_written_from() {
        let mut original = record();
        original.source_ip = Some("192.0.2.1".into());
        original.user_agent = Some("wscat".into());
        original.session = Some(r#"{"cart":3}"#.into());
        assert_eq!(
            super::record(&connection_item(&original)).unwrap(),
            original
        );
    }

    #[test]
    fn every_item_carries_the_ttl() {
        let r = record();
        assert_eq!(
            connection_item(&r).get(TTL_ATTRIBUTE),
            Some(&AttributeValue::N("99".into()))
        );
        assert_eq!(
            member_item(Key::all_member("c1="), &r).get(TTL_ATTRIBUTE),
            Some(&AttributeValue::N("99".into()))
        );
    }
}
