//! An older copy of a node's log database put back after a vote is refused
//! when the log database has a freshness anchor: the vote cannot be rolled
//! back, whether the node stopped cleanly or lost power.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::Vote;
use openraft::storage::RaftLogStorage;
use sealkv::Config;
use sealkv::anchor::FileAnchor;
use sealkv::crypto::{KeySource, MasterKey};
use sealkv_fileio::{SimVfs, Vfs};
use sealkv_raft::{StoreError, StoreOptions, open};

fn options(root: &Path, sim: &SimVfs) -> StoreOptions {
    let key = MasterKey::from_hex(&"7a".repeat(32)).unwrap();
    let snapshot_key = KeySource::Key(key.clone());
    let vfs: Arc<dyn Vfs> = Arc::new(sim.clone());
    StoreOptions::new(root, move |p| {
        let config = Config::new(p).encryption_key(key.clone()).vfs(vfs.clone());
        if p.ends_with("log") {
            let anchor = FileAnchor::with_vfs(vfs.clone(), "/anchors/log.anchor");
            config.freshness_anchor(Arc::new(anchor))
        } else {
            config
        }
    })
    .snapshot_key(snapshot_key)
}

fn files_under(sim: &SimVfs, dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    sim.files()
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .map(|p| {
            let bytes = sim.read_file(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn put_back(sim: &SimVfs, dir: &Path, files: &[(PathBuf, Vec<u8>)]) {
    for p in sim.files() {
        if p.starts_with(dir) {
            sim.remove_file(&p).unwrap();
        }
    }
    for (p, bytes) in files {
        sim.write_file(p, bytes);
    }
}

#[tokio::test]
async fn an_older_log_put_back_after_a_vote_is_a_rollback() {
    for power_cut in [false, true] {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("node");
        let log_dir = root.join("log");
        let sim = SimVfs::new();
        sim.create_dir_all(Path::new("/anchors")).unwrap();

        let (mut log, sm) = open(options(&root, &sim)).unwrap();
        log.save_vote(&Vote::new(1, 1)).await.unwrap();
        let older = files_under(&sim, &log_dir);
        log.save_vote(&Vote::new(2, 1)).await.unwrap();
        if power_cut {
            // The process dies with the vote only synced: nothing closes.
            std::mem::forget((log, sm));
            sim.crash();
        } else {
            drop((log, sm));
        }
        put_back(&sim, &log_dir, &older);
        let err = open(options(&root, &sim)).unwrap_err();
        assert!(
            matches!(&err, StoreError::Db(sealkv::Error::Rollback { .. })),
            "power cut {power_cut}: {err:?}"
        );
    }
}
