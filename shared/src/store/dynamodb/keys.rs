//! Where each fact lives: the key of every item, and the partitions that hold the sets.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::store::{all_shard, ConnectionRecord};

/// The key of one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// The partition key.
    pub pk: String,
    /// The sort key.
    pub sk: String,
}

impl Key {
    /// A connection's record.
    pub fn connection(connection_id: &str) -> Key {
        Key {
            pk: format!("conn#{connection_id}"),
            sk: "conn".into(),
        }
    }

    /// A connection's frame count in one rate-limit window (epoch seconds of its start): a small
    /// item of its own, so that counting costs one write unit whatever the connection holds.
    pub fn rate(connection_id: &str, window: i64) -> Key {
        Key {
            pk: format!("conn#{connection_id}"),
            sk: format!("rate#{window}"),
        }
    }

    /// A connection's place in its uid's set.
    pub fn uid_member(uid: &str, connection_id: &str) -> Key {
        Key {
            pk: uid_partition(uid),
            sk: member_sort_key(connection_id),
        }
    }

    /// A connection's membership of a group.
    pub fn group_member(group: &str, connection_id: &str) -> Key {
        Key {
            pk: group_partition(group),
            sk: member_sort_key(connection_id),
        }
    }

    /// A fan-out job's claim and done mark.
    pub fn job(job: &str) -> Key {
        Key {
            pk: format!("job#{job}"),
            sk: "job".into(),
        }
    }

    /// A connection's place in its shard of everyone.
    pub fn all_member(connection_id: &str) -> Key {
        Key {
            pk: all_partition(all_shard(connection_id)),
            sk: member_sort_key(connection_id),
        }
    }

    /// Every key a connection's record accounts for: itself and each set it belongs to.
    pub fn all_of(record: &ConnectionRecord) -> Vec<Key> {
        let id = &record.connection_id;
        let mut keys = vec![Key::all_member(id)];
        keys.extend(record.uid.iter().map(|uid| Key::uid_member(uid, id)));
        keys.extend(
            record
                .groups
                .iter()
                .map(|group| Key::group_member(group, id)),
        );
        keys.push(Key::connection(id));
        keys
    }

    pub(super) fn item(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(self.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

pub(super) fn uid_partition(uid: &str) -> String {
    format!("uid#{uid}")
}

pub(super) fn group_partition(group: &str) -> String {
    format!("group#{group}")
}

/// The partition of a group's stream: its head, its kept messages and its followers' clock.
pub(super) fn stream_partition(group: &str) -> String {
    format!("stream#{group}")
}

pub(super) fn all_partition(shard: u32) -> String {
    format!("all#{shard}")
}

fn member_sort_key(connection_id: &str) -> String {
    format!("conn#{connection_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sample_record as record;

    #[test]
    fn keys_name_their_set_in_the_partition_and_the_connection_in_the_sort_key() {
        assert_eq!(
            Key::connection("c1="),
            Key {
                pk: "conn#c1=".into(),
                sk: "conn".into()
            }
        );
        assert_eq!(
            Key::uid_member("alice", "c1="),
            Key {
                pk: "uid#alice".into(),
                sk: "conn#c1=".into()
            }
        );
        assert_eq!(
            Key::group_member("g", "c1="),
            Key {
                pk: "group#g".into(),
                sk: "conn#c1=".into()
            }
        );
        assert_eq!(
            Key::all_member("c1=").pk,
            format!("all#{}", all_shard("c1="))
        );
    }

    #[test]
    fn a_record_accounts_for_all_its_items_with_its_own_last() {
        let keys = Key::all_of(&record());
        assert_eq!(keys.len(), 5);
        assert_eq!(keys.last(), Some(&Key::connection("c1=")));
        assert!(keys.contains(&Key::group_member("g2", "c1=")));
        assert!(keys.contains(&Key::uid_member("alice", "c1=")));
    }
}
