//! An in-process network for examples and tests: every node of a cluster
//! in one process, messages handed from task to task, with nodes that can
//! be cut off and messages that can be dropped.
//!
//! A real deployment implements openraft's `RaftNetworkFactory` and
//! `RaftNetwork` over its own transport; [`Router`] is the shape of that
//! code with the sockets taken out. Where a real transport opens a
//! connection (`new_client`) is where TLS (rustls) goes: every request and
//! response crosses that connection, and the snapshot chunks it carries
//! are sealed archives already, but entries and votes are not — the
//! transport must encrypt and authenticate them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use parking_lot::Mutex;

use crate::types::{NodeId, SealRaft};

/// Messages are dropped at a rate of this many per million.
const MILLION: u32 = 1_000_000;

/// The nodes of an in-process cluster and the "network" between them.
/// Cheap to clone; a clone is the `RaftNetworkFactory` each node's `Raft`
/// takes.
#[derive(Clone, Default)]
pub struct Router {
    inner: Arc<RouterInner>,
}

#[derive(Default)]
struct RouterInner {
    nodes: Mutex<BTreeMap<NodeId, Raft<SealRaft>>>,
    /// Per million messages (requests and replies alike).
    drop_rate: AtomicU32,
    random: Mutex<u64>,
    dropped: AtomicU64,
    delivered: AtomicU64,
    /// Snapshot transfers still to damage.
    to_damage: AtomicU32,
    damaged: AtomicU64,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("nodes", &self.inner.nodes.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a message did not arrive.
#[derive(Debug, thiserror::Error)]
#[error("node {target} unreachable: {why}")]
struct Lost {
    target: NodeId,
    why: &'static str,
}

impl Router {
    /// An empty network that loses nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes node `id` reachable as `raft`.
    pub fn add(&self, id: NodeId, raft: Raft<SealRaft>) {
        self.inner.nodes.lock().insert(id, raft);
    }

    /// Cuts node `id` off (as when its process dies) and returns it.
    pub fn remove(&self, id: NodeId) -> Option<Raft<SealRaft>> {
        self.inner.nodes.lock().remove(&id)
    }

    /// Node `id`, if reachable.
    pub fn node(&self, id: NodeId) -> Option<Raft<SealRaft>> {
        self.inner.nodes.lock().get(&id).cloned()
    }

    /// Drops each request and each reply with probability `rate` (0 to 1),
    /// decided by a generator seeded with `seed` (nonzero).
    pub fn set_drop_rate(&self, rate: f64, seed: u64) {
        let per_million = (rate.clamp(0.0, 1.0) * f64::from(MILLION)) as u32;
        *self.inner.random.lock() = seed.max(1);
        self.inner.drop_rate.store(per_million, Ordering::Relaxed);
    }

    /// How many messages were dropped so far.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Damages the next `transfers` snapshot transfers: one bit of the
    /// last chunk of each is flipped on the way, as a faulty link or a
    /// faulty peer would.
    pub fn damage_snapshots(&self, transfers: u32) {
        self.inner.to_damage.store(transfers, Ordering::Relaxed);
    }

    /// How many snapshot transfers were damaged so far.
    pub fn damaged(&self) -> u64 {
        self.inner.damaged.load(Ordering::Relaxed)
    }

    /// Flips a bit of `rpc` if it ends a transfer that is to be damaged.
    fn maybe_damage(&self, rpc: &mut InstallSnapshotRequest<SealRaft>) {
        if !rpc.done || rpc.data.is_empty() {
            return;
        }
        let take = self
            .inner
            .to_damage
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if take.is_ok()
            && let Some(last) = rpc.data.last_mut()
        {
            *last ^= 1;
            self.inner.damaged.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many requests reached their node so far.
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }

    /// Whether to drop the next message (xorshift64: deterministic for a
    /// seed, and no dependency).
    fn lose(&self) -> bool {
        let rate = self.inner.drop_rate.load(Ordering::Relaxed);
        if rate == 0 {
            return false;
        }
        let mut state = self.inner.random.lock();
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        let lost = (x % u64::from(MILLION)) < u64::from(rate);
        if lost {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
        lost
    }

    /// The node a request to `target` is delivered to, unless it is cut
    /// off or the request is dropped.
    fn deliver(&self, target: NodeId) -> Result<Raft<SealRaft>, Lost> {
        if self.lose() {
            return Err(Lost {
                target,
                why: "request dropped",
            });
        }
        let raft = self.node(target).ok_or(Lost {
            target,
            why: "node down",
        })?;
        self.inner.delivered.fetch_add(1, Ordering::Relaxed);
        Ok(raft)
    }

    /// Whether the reply to a delivered request is dropped.
    fn reply_lost(&self, target: NodeId) -> Result<(), Lost> {
        if self.lose() {
            return Err(Lost {
                target,
                why: "reply dropped",
            });
        }
        Ok(())
    }
}

/// One node's connection to another through a [`Router`].
#[derive(Debug)]
pub struct Connection {
    router: Router,
    target: NodeId,
}

impl RaftNetworkFactory<SealRaft> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        // A real transport connects to `_node.addr` here, through TLS.
        Connection {
            router: self.clone(),
            target,
        }
    }
}

fn unreachable<E: std::error::Error>(lost: Lost) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&lost))
}

impl RaftNetwork<SealRaft> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<SealRaft>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.router.deliver(self.target).map_err(unreachable)?;
        let reply = raft
            .append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)));
        self.router.reply_lost(self.target).map_err(unreachable)?;
        reply
    }

    async fn install_snapshot(
        &mut self,
        mut rpc: InstallSnapshotRequest<SealRaft>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let raft = self.router.deliver(self.target).map_err(unreachable)?;
        self.router.maybe_damage(&mut rpc);
        let reply = raft
            .install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)));
        self.router.reply_lost(self.target).map_err(unreachable)?;
        reply
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.router.deliver(self.target).map_err(unreachable)?;
        let reply = raft
            .vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)));
        self.router.reply_lost(self.target).map_err(unreachable)?;
        reply
    }
}
