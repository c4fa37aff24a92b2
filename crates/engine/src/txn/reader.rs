//! A transaction's point reader: a run of reads that keeps its place in
//! the tree.

use sealkv_core_store::Finder;

use super::Transaction;
use super::conflict::ReadSet;
use super::writes::WriteSet;
use crate::Error;
use crate::db::View;
use crate::keyspace::Keyspace;
use crate::keyspace::prefix::Prefix;

/// Point reads of one keyspace in a [`Transaction`], each what
/// [`Transaction::get_in`] gives (the transaction's own write, else its
/// snapshot's value; the key counts as read), that keep their place in
/// the tree from one read to the next: a run of keys in ascending order
/// (the records an index range names, say) is read mostly from the leaf
/// or the branch above it instead of from the root. Keys may come in any
/// order. Get one with [`Transaction::reader_in`]; it borrows the
/// transaction until dropped.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = sealkv::Db::open(dir.path())?;
/// let users = db.keyspace("users")?;
/// for id in 0u32..100 {
///     users.put(id.to_be_bytes(), format!("user {id}"))?;
/// }
/// db.transaction(|tx| {
///     let mut reader = tx.reader_in(&users)?;
///     for id in [3u32, 5, 8, 13] {
///         let user = reader.get(id.to_be_bytes())?;
///         assert_eq!(user, Some(format!("user {id}").into_bytes()));
///     }
///     Ok::<_, sealkv::Error>(())
/// })?;
/// # Ok(())
/// # }
/// ```
pub struct TxnReader<'t> {
    view: &'t View,
    writes: &'t WriteSet,
    reads: &'t mut ReadSet,
    stored: &'t mut Vec<u8>,
    ks: &'t Keyspace,
    prefix: Prefix,
    finder: Finder<'t>,
}

impl std::fmt::Debug for TxnReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnReader")
            .field("snapshot", &self.view.at)
            .finish_non_exhaustive()
    }
}

impl Transaction {
    /// A [`TxnReader`] of keyspace `ks`, for a run of point reads.
    pub fn reader_in<'t>(&'t mut self, ks: &'t Keyspace) -> Result<TxnReader<'t>, Error> {
        let prefix = self.target(Some(ks))?;
        Ok(TxnReader {
            view: &self.view,
            writes: &self.writes,
            reads: &mut self.reads,
            stored: &mut self.stored,
            ks,
            prefix,
            finder: self.view.tree.finder(),
        })
    }
}

impl TxnReader<'_> {
    /// The value of `key`: the transaction's own write, else its
    /// snapshot's (see [`Transaction::get_in`]).
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        // Refused as the transaction's own reads are: a closed database,
        // a dropped keyspace.
        self.ks.live()?;
        let stored = &mut *self.stored;
        stored.clear();
        stored.extend_from_slice(self.prefix.as_bytes());
        stored.extend_from_slice(key.as_ref());
        if let Some(own) = self.writes.get(stored.as_slice()) {
            // Its own write: nothing another transaction does changes it.
            return Ok(own.clone());
        }
        let value = self.view.get_found(&mut self.finder, stored)?;
        self.reads.key(stored);
        Ok(value)
    }
}
