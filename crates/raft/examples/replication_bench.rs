//! Replicated writes per second on three in-process nodes against one
//! sealkv database, both encrypted (AES-256-GCM) and every write synced
//! before it is acknowledged, in one run.
//!
//! ```sh
//! cargo run --release -p sealkv-raft --example replication_bench [-- WRITES]
//! ```
//!
//! Each figure is for `CLIENTS` concurrent writers (tokio tasks writing
//! through the leader; threads writing to the single database) and for
//! one writer. The three nodes share the machine's cores and disk, so the
//! cluster pays three logs' fsyncs plus the state machines' writes on one
//! disk: a floor for what separate machines do.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use openraft::{BasicNode, Raft, SnapshotPolicy};
use sealkv::crypto::{KeySource, MasterKey};
use sealkv::{Config, Durability, WriteBatch};
use sealkv_raft::local::Router;
use sealkv_raft::{NodeId, Request, SealRaft, StoreOptions, open};

const CLIENTS: usize = 32;

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:012}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(100, b'v');
    v
}

async fn cluster(
    root: &std::path::Path,
) -> Result<(Raft<SealRaft>, Vec<Raft<SealRaft>>), Box<dyn Error>> {
    let router = Router::new();
    let cluster_key = MasterKey::random()?;
    let config = Arc::new(
        openraft::Config {
            heartbeat_interval: 100,
            election_timeout_min: 500,
            election_timeout_max: 1000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(50_000),
            ..Default::default()
        }
        .validate()?,
    );
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let node_key = MasterKey::random()?;
        let options = StoreOptions::new(root.join(format!("node-{id}")), move |p| {
            Config::new(p).encryption_key(node_key.clone())
        })
        .snapshot_key(KeySource::Key(cluster_key.clone()));
        let (log, sm) = open(options)?;
        let raft = Raft::new(id, config.clone(), router.clone(), log, sm).await?;
        router.add(id, raft.clone());
        nodes.push(raft);
    }
    let members: BTreeMap<NodeId, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("in-process:{id}"))))
        .collect();
    nodes[0].initialize(members).await?;
    nodes[0]
        .wait(None)
        .current_leader(1, "node 1 leads")
        .await?;
    Ok((nodes[0].clone(), nodes))
}

async fn replicated(writes: usize, clients: usize) -> Result<f64, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let (leader, nodes) = cluster(dir.path()).await?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let leader = leader.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while i < writes {
                leader.client_write(Request::put(key(i), value(i))).await?;
                i += clients;
            }
            Ok::<_, Box<dyn Error + Send + Sync>>(())
        }));
    }
    for t in tasks {
        t.await?.map_err(|e| e.to_string())?;
    }
    let rate = writes as f64 / start.elapsed().as_secs_f64();
    for n in nodes {
        n.shutdown().await?;
    }
    Ok(rate)
}

fn single(writes: usize, clients: usize) -> Result<f64, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let db = Config::new(dir.path())
        .encryption_key(MasterKey::random()?)
        .open()?;
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let db = db.clone();
                s.spawn(move || {
                    let mut i = c;
                    while i < writes {
                        let mut batch = WriteBatch::new();
                        batch.put(key(i), value(i));
                        db.write_with(&batch, Durability::Sync)?;
                        i += clients;
                    }
                    Ok::<_, sealkv::Error>(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "writer panicked")??;
        }
        Ok::<_, Box<dyn Error>>(())
    })?;
    let rate = writes as f64 / start.elapsed().as_secs_f64();
    db.close()?;
    Ok(rate)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let writes: usize = std::env::args().nth(1).map_or(Ok(20_000), |a| a.parse())?;
    println!("{writes} writes of 16-byte keys and 100-byte values, encrypted, synced");
    println!("| writers | 3 nodes (raft) writes/s | 1 sealkv writes/s | ratio |");
    println!("|---|---|---|---|");
    for clients in [1, CLIENTS] {
        let n = if clients == 1 { writes / 10 } else { writes };
        let raft = replicated(n, clients).await?;
        let one = tokio::task::block_in_place(|| single(n, clients))?;
        println!("| {clients} | {raft:.0} | {one:.0} | {:.2} |", raft / one);
    }
    Ok(())
}
