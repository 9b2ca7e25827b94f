use super::*;

/// Live "all" items were written under these shards: a change to the hash strands them.
#[test]
fn a_connection_lands_in_the_shard_it_always_did() {
    let golden = [
        ("Gm1tsdBmoAMCIxw=", 1),
        ("x", 1),
        ("conn1=", 1),
        ("conn2=", 0),
        ("a", 0),
    ];
    for (id, shard) in golden {
        assert_eq!(all_shard(id), shard, "{id}");
    }
}

#[test]
fn connections_spread_over_every_shard() {
    let used: BTreeSet<u32> = (0..1000).map(|i| all_shard(&format!("conn{i}="))).collect();
    assert_eq!(used.len() as u32, ALL_SHARDS);
}

#[test]
fn expiry_is_the_ttl_after_now() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expiry = expiry_from_now(Duration::from_secs(3 * 3600));
    assert!((now + 3 * 3600..=now + 3 * 3600 + 1).contains(&expiry));
}
