//! The storage's own rules: options, refusals, snapshot checks, leftovers,
//! secrets kept out of `Debug`, and a node joining through a snapshot.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder,
    StoredMembership,
};
use sealkv::Config;
use sealkv::crypto::{KeySource, MasterKey};
use sealkv_raft::{Request, Response, SealRaft, StateMachine, StoreError, StoreOptions, open};

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

fn normal(index: u64, request: Request) -> Entry<SealRaft> {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(request),
    }
}

fn encrypted(dir: &std::path::Path, cluster_key: &MasterKey) -> (StoreOptions, MasterKey) {
    let key = MasterKey::random().unwrap();
    let node_key = key.clone();
    let options = StoreOptions::new(dir, move |p| {
        Config::new(p).encryption_key(node_key.clone())
    })
    .snapshot_key(KeySource::Key(cluster_key.clone()));
    (options, key)
}

async fn node_with_state(dir: &std::path::Path, cluster_key: &MasterKey) -> StateMachine {
    let (options, _) = encrypted(dir, cluster_key);
    let (_log, mut sm) = open(options).unwrap();
    let membership = Membership::new(vec![[1].into()], None);
    sm.apply([
        Entry {
            log_id: log_id(1),
            payload: EntryPayload::Membership(membership),
        },
        normal(2, Request::put_in("users", "1", "ada")),
        normal(3, Request::put("k", "v")),
    ])
    .await
    .unwrap();
    sm
}

#[test]
fn an_encrypted_node_without_a_snapshot_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::random().unwrap();
    let options = StoreOptions::new(dir.path(), move |p| {
        Config::new(p).encryption_key(key.clone())
    });
    let err = open(options).unwrap_err();
    assert!(matches!(err, StoreError::InvalidOptions(_)), "{err:?}");
}

#[test]
fn an_encrypted_state_machine_without_a_snapshot_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::random().unwrap();
    // Only the state machine databases are encrypted: their snapshots
    // would still be written in clear.
    let options = StoreOptions::new(dir.path(), move |p| {
        let config = Config::new(p);
        if p.ends_with("log") {
            config
        } else {
            config.encryption_key(key.clone())
        }
    });
    let err = open(options).unwrap_err();
    assert!(matches!(err, StoreError::InvalidOptions(_)), "{err:?}");
}

#[tokio::test]
async fn requests_to_reserved_or_invalid_keyspaces_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = open(StoreOptions::new(dir.path(), |p| Config::new(p))).unwrap();
    let reader = sm.reader();
    let replies = sm
        .apply([
            normal(1, Request::put_in("raft.sm", "applied", "x")),
            normal(2, Request::put_in("", "k", "v")),
            normal(3, Request::put(vec![0u8; 1 << 20], "v")),
            normal(4, Request::put_in("users", "1", "ada")),
        ])
        .await
        .unwrap();
    assert!(matches!(replies[0], Response::Refused(_)));
    assert!(matches!(replies[1], Response::Refused(_)));
    assert!(matches!(replies[2], Response::Refused(_)));
    assert_eq!(replies[3], Response::Applied);
    assert_eq!(reader.applied().unwrap(), Some(log_id(4)));
    assert_eq!(
        reader.contents().unwrap(),
        vec![("users".to_string(), b"1".to_vec(), b"ada".to_vec())]
    );
}

#[tokio::test]
async fn a_snapshot_whose_metadata_lies_is_not_installed() {
    let root = tempfile::tempdir().unwrap();
    let cluster_key = MasterKey::random().unwrap();
    let mut leader = node_with_state(&root.path().join("a"), &cluster_key).await;
    let snapshot = leader.build_snapshot().await.unwrap();
    let (options, _) = encrypted(&root.path().join("b"), &cluster_key);
    let (_log, mut follower) = open(options).unwrap();
    let reader = follower.reader();
    let mut meta = snapshot.meta.clone();
    meta.last_log_id = Some(log_id(99));
    let err = follower
        .install_snapshot(&meta, snapshot.snapshot)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert_eq!(
        reader.applied().unwrap(),
        None,
        "the follower's state is untouched"
    );
    assert!(follower.get_current_snapshot().await.unwrap().is_none());
    assert!(!root.path().join("b/sm-incoming").exists());
}

#[tokio::test]
async fn a_snapshot_sealed_under_another_cluster_key_is_not_installed() {
    let root = tempfile::tempdir().unwrap();
    let mut leader = node_with_state(&root.path().join("a"), &MasterKey::random().unwrap()).await;
    let snapshot = leader.build_snapshot().await.unwrap();
    let (options, _) = encrypted(&root.path().join("b"), &MasterKey::random().unwrap());
    let (_log, mut follower) = open(options).unwrap();
    let err = follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("wrong key"), "{err}");
    assert_eq!(follower.reader().applied().unwrap(), None);
}

#[tokio::test]
async fn a_snapshot_installs_and_survives_a_reopen() {
    let root = tempfile::tempdir().unwrap();
    let cluster_key = MasterKey::random().unwrap();
    let mut leader = node_with_state(&root.path().join("a"), &cluster_key).await;
    let snapshot = leader.build_snapshot().await.unwrap();
    let expected = leader.reader().contents().unwrap();
    let dir_b = root.path().join("b");
    let (options, key_b) = encrypted(&dir_b, &cluster_key);
    let (log, mut follower) = open(options).unwrap();
    follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    assert_eq!(follower.reader().contents().unwrap(), expected);
    assert!(dir_b.join("sm-2").exists() && !dir_b.join("sm-1").exists());
    drop((log, follower));

    // Leftovers of a crash: a half import, a stray archive.
    std::fs::create_dir(dir_b.join("sm-incoming")).unwrap();
    std::fs::write(
        dir_b.join("snapshots/incoming-00000000000000000099.part"),
        b"x",
    )
    .unwrap();
    let options = StoreOptions::new(&dir_b, move |p| {
        Config::new(p).encryption_key(key_b.clone())
    })
    .snapshot_key(KeySource::Key(cluster_key.clone()));
    let (_log, mut follower) = open(options).unwrap();
    assert!(!dir_b.join("sm-incoming").exists());
    assert!(
        !dir_b
            .join("snapshots/incoming-00000000000000000099.part")
            .exists()
    );
    assert_eq!(follower.reader().contents().unwrap(), expected);
    let current = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snapshot.meta);
    let (applied, membership) = follower.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(3)));
    assert_eq!(
        membership,
        StoredMembership::new(Some(log_id(1)), Membership::new(vec![[1].into()], None))
    );
}

#[test]
fn debug_output_shows_no_keyspace_key_or_value() {
    // Keyspace names may say what the data is about: only sizes show.
    let request = Request::put_in("secret-keyspace", "secret-key", "secret-value");
    let shown = format!("{request:?}");
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("keyspace_len: Some(15)"), "{shown}");
    let shown = format!("{:?}", Request::delete("secret-key"));
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("keyspace_len: None"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_joins_through_a_snapshot() {
    let mut cluster = common::Cluster::start(3, true, 20).await;
    for i in 0..100u32 {
        assert!(
            cluster
                .try_write(
                    Request::put(i.to_be_bytes().to_vec(), b"v".to_vec()),
                    Duration::from_secs(10)
                )
                .await
        );
    }
    let leader = cluster.leader().await;
    let purged = cluster.nodes[&leader].raft.metrics().borrow().purged;
    assert!(
        purged.is_some(),
        "the leader purged its log, so only a snapshot can catch up a new node"
    );
    cluster.start_new(4).await;
    cluster.nodes[&leader]
        .raft
        .add_learner(4, BasicNode::new("in-process:4"), true)
        .await
        .expect("node 4 joins as a learner");
    cluster.settle().await;
    let snapshot = cluster.nodes[&4].raft.metrics().borrow().snapshot;
    assert!(snapshot.is_some(), "node 4 installed a snapshot");
    assert_eq!(
        cluster.nodes[&4].reader.contents().unwrap(),
        cluster.nodes[&leader].reader.contents().unwrap()
    );
    for id in cluster.ids.clone() {
        cluster.kill(id).await;
    }
}

/// `request` written through whichever node leads (a large write may
/// take long enough for leadership to move).
async fn write_through_leader(
    cluster: &common::Cluster,
    request: Request,
) -> openraft::raft::ClientWriteResponse<SealRaft> {
    for _ in 0..20 {
        let leader = cluster.leader().await;
        match cluster.nodes[&leader]
            .raft
            .client_write(request.clone())
            .await
        {
            Ok(reply) => return reply,
            Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ForwardToLeader(_),
            )) => continue,
            Err(e) => panic!("the write fails: {e}"),
        }
    }
    panic!("no leader took the write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_of_the_largest_size_is_replicated_and_a_larger_one_refused() {
    let mut cluster = common::Cluster::start_with(3, true, common::patient_raft_config()).await;
    // Its log entry is larger than one sealkv value: it is split.
    let largest = vec![7u8; sealkv::MAX_VALUE_LEN];
    let reply = write_through_leader(&cluster, Request::put("largest", largest.clone())).await;
    assert_eq!(reply.data, Response::Applied);
    let larger = Request::put("larger", vec![7u8; sealkv::MAX_VALUE_LEN + 1]);
    let reply = write_through_leader(&cluster, larger).await;
    assert!(
        matches!(&reply.data, Response::Refused(why) if why.contains("value")),
        "{:?}",
        reply.data
    );
    cluster.settle().await;
    for id in cluster.ids.clone() {
        let reader = &cluster.nodes[&id].reader;
        assert_eq!(
            reader.get(None, b"largest").unwrap().as_deref(),
            Some(&largest[..])
        );
        assert_eq!(reader.get(None, b"larger").unwrap(), None);
    }
    for id in cluster.ids.clone() {
        cluster.kill(id).await;
    }
}

#[tokio::test]
async fn a_split_log_entry_reads_back_whole_after_a_reopen() {
    use openraft::RaftLogReader;
    use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::random().unwrap();
    let (options, _) = encrypted(dir.path(), &key);
    let large = normal(1, Request::put("k", vec![9u8; sealkv::MAX_VALUE_LEN]));
    let after = normal(2, Request::put("k2", "v"));
    {
        let (mut log, _sm) = open(options.clone()).unwrap();
        log.blocking_append([large.clone(), after.clone()])
            .await
            .unwrap();
        let read = log.try_get_log_entries(1..=2).await.unwrap();
        assert_eq!(read, vec![large.clone(), after.clone()]);
    }
    let (mut log, _sm) = open(options).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(2)));
    assert_eq!(log.try_get_log_entries(1..2).await.unwrap(), vec![large]);
    // Truncating the split entry removes all of it.
    log.truncate(log_id(1)).await.unwrap();
    assert_eq!(log.get_log_state().await.unwrap().last_log_id, None);
}

/// What an append or a truncation of a split entry interrupted by a crash
/// leaves at the end of the log: the leading parts of the entry (an append
/// writes its parts in order; a truncation deletes them last first). The
/// node removes them at open, and the log goes on from the entry before.
#[tokio::test]
async fn a_split_entry_left_incomplete_at_the_end_is_removed_at_open() {
    use openraft::RaftLogReader;
    use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
    use sealkv::{Durability, WriteBatch};
    // 16 MiB encodes to 5 parts of at most 4 MiB.
    let large = normal(2, Request::put("k", vec![9u8; sealkv::MAX_VALUE_LEN]));
    let before = normal(1, Request::put("k1", "v"));
    for kept in 1..=4usize {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::random().unwrap();
        let (options, _) = encrypted(dir.path(), &key);
        {
            let (mut log, _sm) = open(options.clone()).unwrap();
            log.blocking_append([before.clone(), large.clone()])
                .await
                .unwrap();
            // The crash's work: only the first `kept` parts stay.
            let keyspace = log.db().keyspace(sealkv_raft::LOG_KEYSPACE).unwrap();
            let keys: Vec<Vec<u8>> = keyspace.iter().unwrap().map(|i| i.unwrap().0).collect();
            let parts: Vec<&Vec<u8>> = keys.iter().filter(|k| k.len() == 16).collect();
            assert_eq!(parts.len(), 5, "the entry is split in five parts");
            let mut batch = WriteBatch::new();
            for part in &parts[kept..] {
                batch.delete_in(&keyspace, part);
            }
            log.db().write_with(&batch, Durability::Sync).unwrap();
            assert!(
                log.try_get_log_entries(1..=2).await.is_err(),
                "kept {kept}: the incomplete entry is a hole before the reopen"
            );
        }
        let (mut log, _sm) = open(options).unwrap();
        let keyspace = log.db().keyspace(sealkv_raft::LOG_KEYSPACE).unwrap();
        assert_eq!(
            keyspace.iter().unwrap().count(),
            1,
            "kept {kept}: only entry 1 stays on disk"
        );
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1)), "kept {kept}");
        assert_eq!(
            log.try_get_log_entries(1..).await.unwrap(),
            vec![before.clone()]
        );
        let next = normal(2, Request::put("k2", "v2"));
        log.blocking_append([next.clone()]).await.unwrap();
        assert_eq!(
            log.try_get_log_entries(1..).await.unwrap(),
            vec![before.clone(), next]
        );
    }
}
