//! The peer engines of `sealkv bench --peers` (feature `peers`): redb,
//! SQLite, LMDB and fjall, each an [`Engine`] running the same workloads as
//! sealkv's modes, at its default settings and cache.

mod fjall;
mod lmdb;
mod redb;
mod sqlite;

use std::fmt::Display;
use std::path::Path;

use super::engine::Engine;
use super::workload::Shape;
use crate::exit::CliError;

/// Every peer, each with its own directory under `root`.
pub(crate) fn all(root: &Path, shape: Shape) -> Vec<Box<dyn Engine>> {
    let dir = |name: &str| root.join(format!("v{}-{name}", shape.value_len));
    vec![
        Box::new(redb::Redb::new(dir("redb"))),
        Box::new(sqlite::Sqlite::new(dir("sqlite"))),
        Box::new(lmdb::Lmdb::new(dir("lmdb"))),
        Box::new(fjall::Fjall::new(dir("fjall"))),
    ]
}

/// An engine's error, as one that names the engine and its file.
fn failure(engine: &'static str, path: &Path, e: impl Display) -> CliError {
    CliError::Peer {
        engine,
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
