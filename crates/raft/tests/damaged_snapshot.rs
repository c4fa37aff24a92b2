//! A snapshot damaged on its way to a follower, in clear, or of another
//! cluster is refused without taking the follower down: it keeps its state
//! and catches up from the leader's next transfer.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
use sealkv::Config;
use sealkv::crypto::{KeySource, MasterKey};
use sealkv_raft::{Request, StateMachine, StoreError, StoreOptions, open};
use tokio::io::AsyncWriteExt;

fn sealed(dir: &Path, cluster_key: &MasterKey) -> StoreOptions {
    let key = MasterKey::random().unwrap();
    StoreOptions::new(dir, move |p| Config::new(p).encryption_key(key.clone()))
        .snapshot_key(KeySource::Key(cluster_key.clone()))
}

/// The archive bytes of a snapshot of a node holding one record.
async fn snapshot_bytes(options: StoreOptions) -> Vec<u8> {
    let (_log, mut sm) = open(options).unwrap();
    sm.apply([Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
        payload: EntryPayload::Normal(Request::put("canary-key", "canary-value")),
    }])
    .await
    .unwrap();
    let snapshot = sm.build_snapshot().await.unwrap();
    std::fs::read(snapshot.snapshot.path()).unwrap()
}

fn follower(dir: &Path, cluster_key: &MasterKey) -> StateMachine {
    open(sealed(dir, cluster_key)).unwrap().1
}

#[tokio::test]
async fn a_plaintext_archive_never_reaches_a_sealed_nodes_disk() {
    let root = tempfile::tempdir().unwrap();
    let cluster_key = MasterKey::random().unwrap();
    let plaintext =
        snapshot_bytes(StoreOptions::new(root.path().join("a"), |p| Config::new(p))).await;
    let mut sm = follower(&root.path().join("b"), &cluster_key);
    let mut data = sm.begin_receiving_snapshot().await.unwrap();
    let path = data.path().to_path_buf();
    let err = data.write_all(&plaintext).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("plaintext"), "{err}");
    data.flush().await.unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        0,
        "nothing written"
    );
    drop(data);
    assert!(!path.exists(), "the refused transfer's file is removed");
}

#[tokio::test]
async fn a_damaged_archive_is_refused_when_its_transfer_ends() {
    let root = tempfile::tempdir().unwrap();
    let cluster_key = MasterKey::random().unwrap();
    let mut bytes = snapshot_bytes(sealed(&root.path().join("a"), &cluster_key)).await;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    let mut sm = follower(&root.path().join("b"), &cluster_key);
    let mut data = sm.begin_receiving_snapshot().await.unwrap();
    let path = data.path().to_path_buf();
    data.write_all(&bytes).await.unwrap();
    let err = data.shutdown().await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    drop(data);
    assert!(!path.exists(), "the refused transfer's file is removed");
    assert_eq!(sm.reader().applied().unwrap(), None, "nothing installed");
}

#[tokio::test]
async fn an_abandoned_transfer_leaves_no_file() {
    let root = tempfile::tempdir().unwrap();
    let cluster_key = MasterKey::random().unwrap();
    let bytes = snapshot_bytes(sealed(&root.path().join("a"), &cluster_key)).await;
    let mut sm = follower(&root.path().join("b"), &cluster_key);
    let mut first = sm.begin_receiving_snapshot().await.unwrap();
    first.write_all(&bytes[..bytes.len() / 2]).await.unwrap();
    first.flush().await.unwrap();
    let path = first.path().to_path_buf();
    assert!(path.exists());
    // openraft drops a transfer's data when a newer transfer replaces it.
    let second = sm.begin_receiving_snapshot().await.unwrap();
    drop(first);
    assert!(!path.exists(), "the abandoned transfer's file is removed");
    assert!(second.path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_refuses_a_damaged_snapshot_and_catches_up_later() {
    let mut cluster = common::Cluster::start(3, true, 20).await;
    let write = |i: u32| Request::put(i.to_be_bytes().to_vec(), b"v".to_vec());
    for i in 0..10u32 {
        assert!(cluster.try_write(write(i), Duration::from_secs(10)).await);
    }
    cluster.settle().await;
    let leader = cluster.leader().await;
    let follower = *cluster.ids.iter().find(|&&id| id != leader).unwrap();
    let before = cluster.nodes[&follower].reader.contents().unwrap();
    assert!(!before.is_empty());
    cluster.kill(follower).await;
    for i in 10..100u32 {
        assert!(cluster.try_write(write(i), Duration::from_secs(10)).await);
    }
    let purged = cluster.nodes[&leader].raft.metrics().borrow().purged;
    assert!(
        purged.is_some(),
        "the leader purged its log, so only a snapshot can catch up the follower"
    );

    cluster.router.damage_snapshots(1);
    cluster.restart(follower).await;
    cluster.settle().await;

    assert_eq!(
        cluster.router.damaged(),
        1,
        "a snapshot transfer was damaged"
    );
    let metrics = cluster.nodes[&follower].raft.metrics().borrow().clone();
    assert!(metrics.running_state.is_ok(), "{:?}", metrics.running_state);
    assert!(
        metrics.snapshot.is_some(),
        "the follower installed a snapshot"
    );
    let leader = cluster.leader().await;
    assert_eq!(
        cluster.nodes[&follower].reader.contents().unwrap(),
        cluster.nodes[&leader].reader.contents().unwrap()
    );
    let (sm, log) = cluster.nodes[&follower].reader.verify().unwrap();
    assert!(sm.is_clean() && log.is_clean());
    let snapshots = common::node_dir(cluster.root.path(), follower).join("snapshots");
    let leftovers: Vec<_> = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("incoming-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    for id in cluster.ids.clone() {
        cluster.kill(id).await;
    }
}

#[tokio::test]
async fn a_snapshot_of_another_cluster_under_the_same_key_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let cluster_key = MasterKey::random().unwrap();
    let alpha = sealed(&root.path().join("a"), &cluster_key).cluster_id("alpha");
    let bytes = snapshot_bytes(alpha).await;
    for (name, id, accepted) in [("b", "beta", false), ("c", "alpha", true)] {
        let options = sealed(&root.path().join(name), &cluster_key).cluster_id(id);
        let mut sm = open(options).unwrap().1;
        let mut data = sm.begin_receiving_snapshot().await.unwrap();
        data.write_all(&bytes).await.unwrap();
        let result = data.shutdown().await;
        if accepted {
            result.unwrap();
        } else {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
            assert!(err.to_string().contains("another cluster"), "{err}");
        }
    }
}

#[test]
fn a_node_directory_opened_with_another_cluster_id_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let cluster_key = MasterKey::random().unwrap();
    let key = MasterKey::random().unwrap();
    let options = |id: &str| {
        let key = key.clone();
        StoreOptions::new(root.path(), move |p| {
            Config::new(p).encryption_key(key.clone())
        })
        .snapshot_key(KeySource::Key(cluster_key.clone()))
        .cluster_id(id)
    };
    drop(open(options("alpha")).unwrap());
    let err = open(options("beta")).unwrap_err();
    assert!(matches!(err, StoreError::OtherCluster { .. }), "{err:?}");
    drop(open(options("alpha")).unwrap());
}

/// Sends `snapshot` to a new follower of the same cluster the way openraft
/// does (chunks into `begin_receiving_snapshot`, `shutdown`, install).
async fn send_to_new_follower(
    dir: &Path,
    cluster_key: &MasterKey,
    snapshot: openraft::Snapshot<sealkv_raft::SealRaft>,
) -> Result<StateMachine, String> {
    let bytes = std::fs::read(snapshot.snapshot.path()).unwrap();
    let mut sm = follower(dir, cluster_key);
    let mut data = sm.begin_receiving_snapshot().await.unwrap();
    data.write_all(&bytes).await.map_err(|e| e.to_string())?;
    data.shutdown().await.map_err(|e| e.to_string())?;
    sm.install_snapshot(&snapshot.meta, data)
        .await
        .map_err(|e| e.to_string())?;
    Ok(sm)
}

#[tokio::test]
async fn a_damaged_or_replaced_local_archive_is_not_sent() {
    for replaced in [false, true] {
        let root = tempfile::tempdir().unwrap();
        let cluster_key = MasterKey::random().unwrap();
        let (_log, mut leader) = open(sealed(&root.path().join("a"), &cluster_key)).unwrap();
        let put = |i: u64| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
            payload: EntryPayload::Normal(Request::put(i.to_be_bytes(), "v")),
        };
        leader.apply([put(1)]).await.unwrap();
        let first = leader.build_snapshot().await.unwrap();
        let older = std::fs::read(first.snapshot.path()).unwrap();
        leader.apply([put(2)]).await.unwrap();
        let second = leader.build_snapshot().await.unwrap();
        let path = second.snapshot.path().to_path_buf();
        drop((first, second));
        if replaced {
            // An older archive of the same node, valid under the same key.
            std::fs::write(&path, &older).unwrap();
        } else {
            let mut bytes = std::fs::read(&path).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 1;
            std::fs::write(&path, &bytes).unwrap();
        }
        let current = leader.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.last_log_id.map(|id| id.index), Some(2));
        let follower = send_to_new_follower(&root.path().join("b"), &cluster_key, current)
            .await
            .unwrap_or_else(|e| panic!("replaced {replaced}: the follower refused: {e}"));
        assert_eq!(
            follower.reader().applied().unwrap().map(|id| id.index),
            Some(2)
        );
    }
}
