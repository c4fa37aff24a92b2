//! Chaos: a three-node cluster under leader kills, restarts and dropped
//! messages. Every acknowledged write must be on every node at the end,
//! the state machines equal, and every node's databases verify clean.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::Cluster;
use sealkv_raft::Request;

/// A seeded xorshift64: the same run for the same seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Outcome {
    acknowledged: usize,
    kills: usize,
    restarts: usize,
    dropped: u64,
}

async fn chaos(ops: usize, seed: u64, encrypted: bool) -> Outcome {
    let mut cluster = Cluster::start(3, encrypted, 50).await;
    cluster.router.set_drop_rate(0.03, seed);
    let mut rng = Rng(seed);
    let mut acknowledged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    // Every value ever sent for a key: a write whose outcome is unknown
    // may be lost, so a node may hold any of them, not only the last.
    let mut attempted: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> = BTreeMap::new();
    let (mut kills, mut restarts) = (0, 0);
    for op in 0..ops {
        let down = cluster.down();
        match rng.below(100) {
            // Kill the leader (one node down at most, so a quorum remains).
            0..=2 if down.is_empty() => {
                let leader = cluster.leader().await;
                cluster.kill(leader).await;
                kills += 1;
            }
            // Kill a follower.
            3 if down.is_empty() => {
                let leader = cluster.leader().await;
                let follower = cluster.ids.iter().copied().find(|&id| id != leader);
                if let Some(id) = follower {
                    cluster.kill(id).await;
                    kills += 1;
                }
            }
            // Bring a dead node back from its files.
            4..=9 if !down.is_empty() => {
                cluster.restart(down[0]).await;
                restarts += 1;
            }
            _ => {}
        }
        // Keys are overwritten now and then, so later values must win.
        let key = format!("key-{:04}", rng.below(ops as u64 / 2 + 1)).into_bytes();
        let value = format!("value-{op:06}").into_bytes();
        attempted
            .entry(key.clone())
            .or_default()
            .insert(value.clone());
        if cluster
            .try_write(
                Request::put(key.clone(), value.clone()),
                Duration::from_secs(3),
            )
            .await
        {
            acknowledged.insert(key, value);
        } else {
            // Unknown outcome: the key may hold this value or an earlier one.
            acknowledged.remove(&key);
        }
    }
    cluster.router.set_drop_rate(0.0, 1);
    let down = cluster.down();
    for id in down {
        cluster.restart(id).await;
        restarts += 1;
    }
    cluster.settle().await;

    let mut contents = Vec::new();
    for (id, node) in &cluster.nodes {
        let records = node.reader.contents().expect("read the state machine");
        let map: BTreeMap<_, _> = records
            .iter()
            .filter(|(ks, _, _)| ks.is_empty())
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, value) in &acknowledged {
            assert_eq!(
                map.get(key),
                Some(value),
                "node {id}: an acknowledged write is lost"
            );
        }
        for (key, value) in &map {
            assert!(
                attempted.get(key).is_some_and(|sent| sent.contains(value)),
                "node {id}: a value nobody wrote for its key"
            );
        }
        let (sm, log) = node.reader.verify().expect("verify runs");
        assert!(
            sm.is_clean(),
            "node {id}: state machine verify: {:?}",
            sm.findings
        );
        assert!(log.is_clean(), "node {id}: log verify: {:?}", log.findings);
        contents.push(records);
    }
    assert!(
        contents.windows(2).all(|w| w[0] == w[1]),
        "state machines differ"
    );
    let dropped = cluster.router.dropped();
    for id in cluster.ids.clone() {
        cluster.kill(id).await;
    }
    Outcome {
        acknowledged: acknowledged.len(),
        kills,
        restarts,
        dropped,
    }
}

fn check(outcome: &Outcome) {
    eprintln!(
        "chaos: {} keys acknowledged, {} kills, {} restarts, {} messages dropped",
        outcome.acknowledged, outcome.kills, outcome.restarts, outcome.dropped
    );
    // The events the test is named after happened.
    assert!(outcome.kills >= 2, "only {} kills", outcome.kills);
    assert!(outcome.restarts >= 2, "only {} restarts", outcome.restarts);
    assert!(outcome.dropped > 0, "no message was dropped");
    assert!(outcome.acknowledged > 0, "nothing was acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_keeps_every_acknowledged_write_encrypted() {
    let outcome = chaos(300, 0x5eed_1234, true).await;
    check(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: about 10x the normal chaos run"]
async fn chaos_long_run() {
    for seed in [7, 77, 777] {
        let outcome = chaos(1000, seed, seed % 2 == 1).await;
        check(&outcome);
    }
}
