#![doc = include_str!("../README.md")]
//!
//! # The API at a glance
//!
//! - Opening a node's storage: [`open`] with [`StoreOptions`]; it returns
//!   the [`LogStore`] and the [`StateMachine`] to give `openraft::Raft::new`.
//! - What is replicated: [`Request`]s in, [`Response`]s out, under the
//!   type configuration [`SealRaft`].
//! - The application's reads: [`Reader`] (from [`StateMachine::reader`]).
//! - Snapshot data as openraft moves it: [`SnapshotFile`].
//! - An in-process network for examples and tests: [`local`].
//! - What goes wrong: [`StoreError`].
// openraft's trait methods return its `StorageError` (224 bytes): the size
// is its API's, not ours to box.
#![allow(clippy::result_large_err)]

mod codec;
mod error;
pub mod local;
mod log_store;
mod snapshot;
mod state_machine;
mod store;
mod types;

pub use error::StoreError;
pub use log_store::{LOG_KEYSPACE, LogStore, META_KEYSPACE};
pub use snapshot::SnapshotFile;
pub use state_machine::{Reader, Record, SM_KEYSPACE, StateMachine};
pub use store::{StoreOptions, open};
pub use types::{NodeId, RESERVED_PREFIX, Request, Response, SealRaft};

pub use openraft;
