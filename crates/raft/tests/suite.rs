//! openraft's own storage conformance suite against sealkv-raft, on an
//! encrypted node and on a plaintext one.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use sealkv::Config;
use sealkv::crypto::{KeySource, MasterKey};
use sealkv_raft::{LogStore, NodeId, SealRaft, StateMachine, StoreOptions, open};
use tempfile::TempDir;

/// Builds one node's storage per suite test. The encrypted nodes have
/// their own master keys and share the cluster's snapshot key, as the nodes
/// of one cluster do (the suite moves a snapshot from one store to another).
struct Builder {
    snapshot_key: Option<MasterKey>,
}

impl StoreBuilder<SealRaft, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = if let Some(snapshot_key) = &self.snapshot_key {
            let key = MasterKey::random().expect("random key");
            StoreOptions::new(dir.path().join("node"), move |p| {
                Config::new(p).encryption_key(key.clone())
            })
            .snapshot_key(KeySource::Key(snapshot_key.clone()))
        } else {
            StoreOptions::new(dir.path().join("node"), |p| Config::new(p))
        };
        let (log, sm) = open(options).expect("open the store");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_suite_passes_on_an_encrypted_node() {
    let snapshot_key = Some(MasterKey::random().expect("random key"));
    Suite::test_all(Builder { snapshot_key }).expect("every suite test passes");
}

#[test]
fn openraft_suite_passes_on_a_plaintext_node() {
    Suite::test_all(Builder { snapshot_key: None }).expect("every suite test passes");
}
