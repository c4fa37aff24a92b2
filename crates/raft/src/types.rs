//! What is replicated: the requests the state machine applies and what it
//! answers, and the openraft type configuration that names them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::snapshot::SnapshotFile;

openraft::declare_raft_types!(
    /// The openraft type configuration of a sealkv cluster: [`Request`]s in,
    /// [`Response`]s out, `u64` node ids, [`openraft::BasicNode`] addresses,
    /// snapshots as sealed archive files ([`SnapshotFile`]).
    pub SealRaft:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<SealRaft>,
        SnapshotData = SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Node ids of a [`SealRaft`] cluster.
pub type NodeId = u64;

/// Keyspace names starting with this belong to the replication layer;
/// requests naming one are refused ([`Response::Refused`]).
pub const RESERVED_PREFIX: &str = "raft.";

/// One change to the replicated state machine: applied on every node, in
/// log order, atomically with the record of the entry that carried it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Set `key` to `value` in keyspace `keyspace` (the default keyspace for
    /// `None`).
    Put {
        /// The keyspace, `None` for the default one.
        keyspace: Option<String>,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `key` from keyspace `keyspace`.
    Delete {
        /// The keyspace, `None` for the default one.
        keyspace: Option<String>,
        /// The key.
        key: Vec<u8>,
    },
}

impl Request {
    /// A put into the default keyspace.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Request::Put {
            keyspace: None,
            key: key.into(),
            value: value.into(),
        }
    }

    /// A put into keyspace `keyspace`.
    pub fn put_in(
        keyspace: impl Into<String>,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Self {
        Request::Put {
            keyspace: Some(keyspace.into()),
            key: key.into(),
            value: value.into(),
        }
    }

    /// A delete from the default keyspace.
    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        Request::Delete {
            keyspace: None,
            key: key.into(),
        }
    }

    /// The keyspace it writes to.
    pub fn keyspace(&self) -> Option<&str> {
        match self {
            Request::Put { keyspace, .. } | Request::Delete { keyspace, .. } => keyspace.as_deref(),
        }
    }
}

impl fmt::Debug for Request {
    // Keys, values and keyspace names may be secrets (a name can say what
    // the data is about): only their sizes reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Put {
                keyspace,
                key,
                value,
            } => f
                .debug_struct("Put")
                .field("keyspace_len", &keyspace.as_ref().map(String::len))
                .field("key_len", &key.len())
                .field("value_len", &value.len())
                .finish(),
            Request::Delete { keyspace, key } => f
                .debug_struct("Delete")
                .field("keyspace_len", &keyspace.as_ref().map(String::len))
                .field("key_len", &key.len())
                .finish(),
        }
    }
}

/// What applying one log entry did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The request was applied (or the entry carried none: a blank or a
    /// membership entry).
    Applied,
    /// The request was refused, identically on every node, and changed
    /// nothing: it named a reserved keyspace or one with an invalid name,
    /// or its key or value was too large.
    Refused(String),
}
