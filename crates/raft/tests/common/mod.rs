//! A cluster of sealkv-raft nodes in one process, for the tests.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Raft, SnapshotPolicy};
use sealkv::Config;
use sealkv::crypto::{KeySource, MasterKey};
use sealkv_raft::local::Router;
use sealkv_raft::{NodeId, Reader, Request, Response, SealRaft, StoreOptions, open};
use tempfile::TempDir;

/// How long a test waits for an election or a catch-up before failing.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// One running node.
pub(crate) struct Node {
    pub(crate) raft: Raft<SealRaft>,
    pub(crate) reader: Reader,
}

/// Three (or more) nodes, their keys and their network.
pub(crate) struct Cluster {
    pub(crate) root: TempDir,
    pub(crate) router: Router,
    pub(crate) nodes: BTreeMap<NodeId, Node>,
    pub(crate) ids: Vec<NodeId>,
    keys: BTreeMap<NodeId, Option<MasterKey>>,
    cluster_key: Option<MasterKey>,
    config: Arc<openraft::Config>,
}

/// openraft settings for tests: quick elections, frequent snapshots.
pub(crate) fn raft_config(snapshot_every: u64) -> Arc<openraft::Config> {
    let config = openraft::Config {
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
        max_in_snapshot_log_to_keep: 10,
        ..Default::default()
    };
    Arc::new(config.validate().expect("valid raft config"))
}

/// openraft settings for writes that take long to seal and sync (values of
/// many MiB in a debug build on a busy machine): elections slow enough that
/// one such append does not cost the leader its term.
pub(crate) fn patient_raft_config() -> Arc<openraft::Config> {
    let config = openraft::Config {
        heartbeat_interval: 500,
        election_timeout_min: 5_000,
        election_timeout_max: 10_000,
        ..Default::default()
    };
    Arc::new(config.validate().expect("valid raft config"))
}

/// The storage options of node `id` under `root`.
pub(crate) fn node_options(
    root: &Path,
    id: NodeId,
    key: Option<MasterKey>,
    cluster_key: Option<&MasterKey>,
) -> StoreOptions {
    let dir = node_dir(root, id);
    match key {
        Some(key) => StoreOptions::new(dir, move |p| Config::new(p).encryption_key(key.clone()))
            .snapshot_key(KeySource::Key(cluster_key.expect("a cluster key").clone())),
        None => StoreOptions::new(dir, |p| Config::new(p)),
    }
}

pub(crate) fn node_dir(root: &Path, id: NodeId) -> PathBuf {
    root.join(format!("node-{id}"))
}

impl Cluster {
    /// `n` nodes, started and initialized; encrypted or plaintext.
    pub(crate) async fn start(n: u64, encrypted: bool, snapshot_every: u64) -> Cluster {
        Cluster::start_with(n, encrypted, raft_config(snapshot_every)).await
    }

    /// `n` nodes under the openraft settings `config`, started and
    /// initialized; encrypted or plaintext.
    pub(crate) async fn start_with(
        n: u64,
        encrypted: bool,
        config: Arc<openraft::Config>,
    ) -> Cluster {
        let ids: Vec<NodeId> = (1..=n).collect();
        let keys = ids
            .iter()
            .map(|&id| (id, encrypted.then(|| MasterKey::random().expect("key"))))
            .collect();
        let mut cluster = Cluster {
            root: tempfile::tempdir().expect("temporary directory"),
            router: Router::new(),
            nodes: BTreeMap::new(),
            ids: ids.clone(),
            keys,
            cluster_key: encrypted.then(|| MasterKey::random().expect("key")),
            config,
        };
        for &id in &ids {
            cluster.restart(id).await;
        }
        let members: BTreeMap<NodeId, BasicNode> = ids
            .iter()
            .map(|&id| (id, BasicNode::new(format!("in-process:{id}"))))
            .collect();
        cluster.nodes[&ids[0]]
            .raft
            .initialize(members)
            .await
            .expect("initialize");
        cluster
    }

    /// Starts a new node `id` (with a key of its own if the cluster is
    /// encrypted); it is not a member until the leader adds it.
    pub(crate) async fn start_new(&mut self, id: NodeId) {
        let key = self
            .cluster_key
            .is_some()
            .then(|| MasterKey::random().expect("key"));
        self.keys.insert(id, key);
        self.ids.push(id);
        self.restart(id).await;
    }

    /// Starts node `id` from its directory (new or not).
    pub(crate) async fn restart(&mut self, id: NodeId) {
        let options = node_options(
            self.root.path(),
            id,
            self.keys[&id].clone(),
            self.cluster_key.as_ref(),
        );
        let (log, sm) = open(options).expect("open node storage");
        let reader = sm.reader();
        let raft = Raft::new(id, self.config.clone(), self.router.clone(), log, sm)
            .await
            .expect("start raft");
        self.router.add(id, raft.clone());
        self.nodes.insert(id, Node { raft, reader });
    }

    /// Stops node `id` at once: cut off, shut down, its storage closed.
    pub(crate) async fn kill(&mut self, id: NodeId) {
        self.router.remove(id);
        if let Some(node) = self.nodes.remove(&id) {
            node.raft.shutdown().await.expect("shutdown");
        }
    }

    /// The nodes of the cluster that are not running.
    pub(crate) fn down(&self) -> Vec<NodeId> {
        self.ids
            .iter()
            .copied()
            .filter(|id| !self.nodes.contains_key(id))
            .collect()
    }

    /// The leader the running nodes agree on, waiting up to `PATIENCE`.
    pub(crate) async fn leader(&self) -> NodeId {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            for node in self.nodes.values() {
                let m = node.raft.metrics().borrow().clone();
                if let Some(l) = m.current_leader
                    && self.nodes.contains_key(&l)
                {
                    let lm = self.nodes[&l].raft.metrics().borrow().clone();
                    if lm.current_leader == Some(l) {
                        return l;
                    }
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "no leader elected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One attempt to write through the current leader; `true` once the
    /// write is acknowledged (committed and applied on the leader).
    pub(crate) async fn try_write(&self, request: Request, timeout: Duration) -> bool {
        let leader = self.leader().await;
        let raft = self.nodes[&leader].raft.clone();
        match tokio::time::timeout(timeout, raft.client_write(request)).await {
            Ok(Ok(reply)) => {
                assert_eq!(reply.data, Response::Applied);
                true
            }
            _ => false,
        }
    }

    /// Waits until every running node has applied up to the leader's last
    /// applied entry (after a barrier write, so everything before it is
    /// committed).
    pub(crate) async fn settle(&self) {
        let mut barrier = false;
        for _ in 0..20 {
            if self
                .try_write(Request::put_in("barrier", "b", "b"), Duration::from_secs(5))
                .await
            {
                barrier = true;
                break;
            }
        }
        assert!(barrier, "a barrier write is acknowledged");
        let leader = self.leader().await;
        let last = self.nodes[&leader].raft.metrics().borrow().last_applied;
        for node in self.nodes.values() {
            node.raft
                .wait(Some(PATIENCE))
                .applied_index_at_least(last.map(|l| l.index), "caught up")
                .await
                .expect("node catches up");
        }
    }
}
