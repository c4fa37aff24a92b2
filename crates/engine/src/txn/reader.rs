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
        let stored = stored_key(self.stored, self.prefix, key.as_ref());
        if let Some(own) = self.writes.get(stored) {
            // Its own write: nothing another transaction does changes it.
            return Ok(own.clone());
        }
        let value = self.view.get_found(&mut self.finder, stored)?;
        self.reads.key(stored);
        Ok(value)
    }

    /// [`TxnReader::get`] into a buffer the caller keeps: `out` is
    /// cleared, then holds the value if `key` is present (`true`) and
    /// stays empty if not (`false`). The key counts as read either way. A
    /// run of reads through one buffer allocates only while it grows;
    /// the value can be decoded from `out` before the next read.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = sealkv::Db::open(dir.path())?;
    /// let users = db.keyspace("users")?;
    /// users.put(1u32.to_be_bytes(), "ada")?;
    /// db.transaction(|tx| {
    ///     let mut reader = tx.reader_in(&users)?;
    ///     let mut value = Vec::new();
    ///     assert!(reader.get_into(1u32.to_be_bytes(), &mut value)?);
    ///     assert_eq!(value, b"ada");
    ///     assert!(!reader.get_into(2u32.to_be_bytes(), &mut value)?);
    ///     assert!(value.is_empty());
    ///     Ok::<_, sealkv::Error>(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_into(&mut self, key: impl AsRef<[u8]>, out: &mut Vec<u8>) -> Result<bool, Error> {
        // Refused as the transaction's own reads are: a closed database,
        // a dropped keyspace.
        self.ks.live()?;
        let stored = stored_key(self.stored, self.prefix, key.as_ref());
        if let Some(own) = self.writes.get(stored) {
            // Its own write: nothing another transaction does changes it.
            out.clear();
            out.extend_from_slice(own.as_deref().unwrap_or_default());
            return Ok(own.is_some());
        }
        let found = self.view.get_found_into(&mut self.finder, stored, out)?;
        self.reads.key(stored);
        Ok(found)
    }
}

/// `key` in the keyspace of `prefix`, as the tree stores it, in the
/// transaction's reused key buffer.
fn stored_key<'s>(stored: &'s mut Vec<u8>, prefix: Prefix, key: &[u8]) -> &'s [u8] {
    stored.clear();
    stored.extend_from_slice(prefix.as_bytes());
    stored.extend_from_slice(key);
    stored
}
