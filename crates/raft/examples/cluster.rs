//! A three-node replicated, encrypted key-value service in one process:
//! writes through the leader, linearizable reads, the leader killed and a
//! new one elected, the old leader restarted from its sealed files and
//! caught up, every acknowledged write on every node, and no node's
//! directory holding a byte of the plaintext — checked while the nodes run
//! (WAL, memtable flushes, snapshots in flight) and after they stop, for
//! the records of every keyspace written (the default one and a named
//! one).
//!
//! ```sh
//! cargo run --release -p sealkv-raft --example cluster
//! ```
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Raft, SnapshotPolicy};
use sealkv::Config;
use sealkv::crypto::{KeySource, MasterKey};
use sealkv_raft::local::Router;
use sealkv_raft::{NodeId, Reader, Request, Response, SealRaft, StoreOptions, open};
use sealkv_testkit::{Canaries, scan_for_plaintext};

const NODES: [NodeId; 3] = [1, 2, 3];
const WRITES: usize = 300;
const TIMEOUT: Duration = Duration::from_secs(20);
/// The named keyspace the odd-numbered writes go to.
const KEYSPACE: &str = "accounts";

/// The keyspace write `i` goes to: the default one or [`KEYSPACE`].
fn keyspace_of(i: usize) -> Option<&'static str> {
    (i % 2 == 1).then_some(KEYSPACE)
}

/// Write `i` of the run: canary key and value, in its keyspace.
fn canary_write(canaries: &Canaries, i: usize) -> Request {
    match keyspace_of(i) {
        None => Request::put(canaries.key(i), canaries.value(i)),
        Some(ks) => Request::put_in(ks, canaries.key(i), canaries.value(i)),
    }
}

/// A file's path and its bytes.
type NamedFile = (String, Vec<u8>);

/// Every file under `dir` as it is now, the nodes running: a file removed
/// while the walk reads it (an old snapshot, a finished transfer) is
/// skipped.
fn read_tree_live(dir: &Path) -> Result<Vec<NamedFile>, Box<dyn Error>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) => out.push((path.display().to_string(), bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

/// Fails if any file under `root` holds a canary; says what it scanned.
fn canary_check(root: &Path, canaries: &Canaries, when: &str) -> Result<(), Box<dyn Error>> {
    let files = read_tree_live(root)?;
    let leaks = scan_for_plaintext(&files, canaries);
    if !leaks.is_empty() {
        return Err(format!("plaintext found {when}: {leaks:?}").into());
    }
    let archives = files
        .iter()
        .filter(|(name, _)| name.ends_with(".archive"))
        .count();
    // Snapshots are built every 100 entries: a check that saw no archive
    // did not check them.
    if archives == 0 {
        return Err(format!("canary check {when}: no snapshot archive to scan").into());
    }
    println!(
        "canary check {when}: {} files ({archives} snapshot archives) hold none of the {} canaries",
        files.len(),
        2 * WRITES
    );
    Ok(())
}

/// The newest state machine generation in node `id`'s directory: each
/// snapshot install makes a new one (`sm-<generation>`).
fn sm_generation(root: &Path, id: NodeId) -> Result<u64, Box<dyn Error>> {
    let mut newest = 0;
    for entry in std::fs::read_dir(root.join(format!("node-{id}")))? {
        let name = entry?.file_name();
        let generation = name
            .to_str()
            .and_then(|n| n.strip_prefix("sm-"))
            .and_then(|g| g.parse::<u64>().ok());
        newest = newest.max(generation.unwrap_or(0));
    }
    Ok(newest)
}

/// One running node: its raft handle and its state machine's reader.
struct Node {
    raft: Raft<SealRaft>,
    reader: Reader,
}

/// Opens node `id`'s sealed storage under `root` and starts it.
async fn start(
    root: &Path,
    id: NodeId,
    keys: &BTreeMap<NodeId, MasterKey>,
    cluster_key: &MasterKey,
    router: &Router,
) -> Result<Node, Box<dyn Error>> {
    let node_key = keys[&id].clone();
    let options = StoreOptions::new(root.join(format!("node-{id}")), move |p| {
        Config::new(p).encryption_key(node_key.clone())
    })
    .snapshot_key(KeySource::Key(cluster_key.clone()));
    let (log_store, state_machine) = open(options)?;
    let reader = state_machine.reader();
    let config = openraft::Config {
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        // Snapshots every 100 entries, so the run builds and ships some.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(100),
        max_in_snapshot_log_to_keep: 20,
        ..Default::default()
    }
    .validate()?;
    let raft = Raft::new(
        id,
        Arc::new(config),
        router.clone(),
        log_store,
        state_machine,
    )
    .await?;
    router.add(id, raft.clone());
    Ok(Node { raft, reader })
}

/// The leader as the running nodes see it, once one is elected.
async fn leader(nodes: &BTreeMap<NodeId, Node>) -> Result<NodeId, Box<dyn Error>> {
    let any = nodes.values().next().ok_or("no node running")?;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let seen = any.raft.metrics().borrow().current_leader;
        if let Some(id) = seen.filter(|id| nodes.contains_key(id)) {
            return Ok(id);
        }
        if tokio::time::Instant::now() > deadline {
            return Err("no leader elected".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes through the leader; returns once the write is committed and
/// applied on the leader (acknowledged).
async fn write(nodes: &BTreeMap<NodeId, Node>, request: Request) -> Result<(), Box<dyn Error>> {
    let id = leader(nodes).await?;
    let response = nodes[&id].raft.client_write(request).await?;
    match response.data {
        Response::Applied => Ok(()),
        Response::Refused(why) => Err(why.into()),
    }
}

/// A linearizable read: the leader confirms it still leads and has applied
/// everything committed before the read, then reads its state machine.
async fn read(
    nodes: &BTreeMap<NodeId, Node>,
    keyspace: Option<&str>,
    key: &[u8],
) -> Result<Option<Vec<u8>>, Box<dyn Error>> {
    let id = leader(nodes).await?;
    nodes[&id].raft.ensure_linearizable().await?;
    Ok(nodes[&id].reader.get(keyspace, key)?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let cluster_key = MasterKey::random()?;
    let keys: BTreeMap<NodeId, MasterKey> = NODES
        .iter()
        .map(|&id| Ok((id, MasterKey::random()?)))
        .collect::<Result<_, sealkv::crypto::CryptoError>>()?;
    let router = Router::new();
    let mut nodes = BTreeMap::new();
    for id in NODES {
        nodes.insert(id, start(root, id, &keys, &cluster_key, &router).await?);
    }
    let members: BTreeMap<NodeId, BasicNode> = NODES
        .iter()
        .map(|&id| (id, BasicNode::new(format!("in-process:{id}"))))
        .collect();
    nodes[&1].raft.initialize(members).await?;
    let first = leader(&nodes).await?;
    println!("node {first} leads");

    let canaries = Canaries::new(WRITES);
    for i in 0..WRITES / 2 {
        write(&nodes, canary_write(&canaries, i)).await?;
    }
    let got = read(&nodes, keyspace_of(0), canaries.key(0)).await?;
    assert_eq!(got.as_deref(), Some(canaries.value(0)));
    println!(
        "{} writes acknowledged; a linearizable read sees them",
        WRITES / 2
    );
    canary_check(root, &canaries, "while running")?;

    // The leader dies.
    let dead = nodes.remove(&first).ok_or("leader not running")?;
    router.remove(first);
    dead.raft.shutdown().await?;
    drop(dead);
    let generation_before = sm_generation(root, first)?;
    let second = leader(&nodes).await?;
    println!("node {first} killed; node {second} elected");

    for i in WRITES / 2..WRITES {
        write(&nodes, canary_write(&canaries, i)).await?;
    }
    let got = read(&nodes, keyspace_of(WRITES - 1), canaries.key(WRITES - 1)).await?;
    assert_eq!(got.as_deref(), Some(canaries.value(WRITES - 1)));
    println!("{} more writes acknowledged by node {second}", WRITES / 2);

    // The old leader comes back from its sealed files and catches up.
    nodes.insert(
        first,
        start(root, first, &keys, &cluster_key, &router).await?,
    );
    let last = nodes[&second].raft.metrics().borrow().last_applied;
    let last_index = last.map(|id| id.index);
    for node in nodes.values() {
        node.raft
            .wait(Some(TIMEOUT))
            .applied_index_at_least(last_index, "caught up")
            .await?;
    }
    let installed = nodes[&first].raft.metrics().borrow().snapshot;
    // The new leader purged its log past what the old one had: the old
    // leader can only have caught up by installing a snapshot, which makes
    // a new state machine generation.
    let generation_after = sm_generation(root, first)?;
    if generation_after <= generation_before {
        return Err(format!(
            "node {first} caught up without installing a snapshot \
             (state machine generation {generation_before} -> {generation_after})"
        )
        .into());
    }
    println!(
        "node {first} restarted and caught up to index {} through a snapshot install \
         (state machine generation {generation_before} -> {generation_after}); \
         its snapshot: up to index {}",
        last_index.unwrap_or(0),
        installed.map_or("none".to_string(), |id| id.index.to_string()),
    );

    // Nothing acknowledged is lost, on any node.
    for (id, node) in &nodes {
        for i in 0..WRITES {
            let got = node.reader.get(keyspace_of(i), canaries.key(i))?;
            if got.as_deref() != Some(canaries.value(i)) {
                return Err(format!("node {id} lost write {i}").into());
            }
        }
        let (sm, log) = node.reader.verify()?;
        if !sm.is_clean() || !log.is_clean() {
            return Err(format!("node {id} fails verify").into());
        }
    }
    println!("all {WRITES} acknowledged writes on all 3 nodes; verify clean");
    canary_check(root, &canaries, "with the old leader caught up")?;

    // Stop everything, then look again: what closing writes is sealed too.
    for (id, node) in std::mem::take(&mut nodes) {
        router.remove(id);
        node.raft.shutdown().await?;
    }
    canary_check(root, &canaries, "after shutdown")?;
    Ok(())
}
