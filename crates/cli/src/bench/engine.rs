//! The seam between the workloads and the engines they time.
//!
//! Every workload is written once, against [`Engine`] and [`Store`]; sealkv
//! (one [`Engine`] per mode) and each peer implement them with their own
//! API at its natural grain: a durable batch is one write transaction, a
//! read view is one read transaction, a transaction is the engine's own
//! serializable write transaction. So every engine runs exactly the same
//! operations, on the same keys and values, in the same order.

use std::path::Path;

use super::people::{People, Table as PeopleTable};
use super::records::{KEY_LEN, value_into};
use crate::exit::CliError;

/// How a workload wants the database opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Open {
    /// A new, empty database (any old one removed first).
    Fresh,
    /// The database the workloads before left.
    Existing,
    /// The existing database, ready for [`Store::transaction`] on every
    /// [`Table`] (an engine whose transactional API is another handle, like
    /// fjall's, opens that one).
    Transactional,
}

/// The sets of keys the workloads use: the records, and the small tables of
/// the transaction workloads (a named keyspace, table or database of its
/// own in each engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Records,
    Counters,
    Accounts,
}

impl Table {
    /// The table's name in the engines that name them.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Records => "kv",
            Table::Counters => "counters",
            Table::Accounts => "accounts",
        }
    }
}

/// A database engine under test, with its directory.
pub(crate) trait Engine: Sync {
    /// The column name in the report.
    fn name(&self) -> &'static str;
    /// The directory its database lives in.
    fn dir(&self) -> &Path;
    /// Opens the database, runs `work` on it and closes it (close included
    /// in the call: a workload that times the close stops its clock after
    /// this returns). The database is closed even if `work` fails.
    fn session(
        &self,
        open: Open,
        work: &mut dyn FnMut(&dyn Store) -> Result<(), CliError>,
    ) -> Result<(), CliError>;
    /// How many transactions the engine gave up on since the last call
    /// (refused on conflict after its own retries) and the bench ran again
    /// itself; the report names them.
    fn take_given_up(&self) -> u64 {
        0
    }
    /// Whether it runs the collections workloads (through
    /// [`Engine::people`]).
    fn runs_people(&self) -> bool {
        false
    }
    /// Opens its `person` table of kind `table` (`fresh`: in a new, empty
    /// database, any old one removed first), runs `work` on it and closes
    /// it, as [`Engine::session`] does.
    fn people(
        &self,
        fresh: bool,
        table: PeopleTable,
        work: PeopleWork<'_>,
    ) -> Result<(), CliError> {
        let _ = (fresh, table, work);
        Err(CliError::Usage(format!(
            "bench: {} runs no collections workload",
            self.name()
        )))
    }
}

/// The work of one session on a `person` table.
pub(crate) type PeopleWork<'a> = &'a mut dyn FnMut(&dyn People) -> Result<(), CliError>;

/// A check of one value read (`None`: the key is absent).
pub(crate) type Check<'a> = &'a mut dyn FnMut(Option<&[u8]>) -> Result<(), CliError>;
/// A visit of one record of a scan: key, value.
pub(crate) type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<(), CliError>;
/// The body of a transaction; it may run more than once (on conflict).
pub(crate) type Body<'a> = &'a mut dyn FnMut(&mut dyn Txn) -> Result<(), CliError>;

/// One open database.
pub(crate) trait Store: Sync {
    /// Commits every record of `batch` into [`Table::Records`] durably (an
    /// fsync before it returns), all or nothing.
    fn write(&self, batch: &Batch) -> Result<(), CliError>;
    /// A read view of [`Table::Records`] that sees every commit made before
    /// it (the engine's read transaction, where it has one).
    fn reader(&self) -> Result<Box<dyn Reader + '_>, CliError>;
    /// Runs `body` in a serializable read-write transaction and commits it
    /// durably; runs it again if the engine refuses the commit on conflict.
    /// Callable from several threads at once.
    fn transaction(&self, body: Body<'_>) -> Result<(), CliError>;
}

/// A read view of the records.
pub(crate) trait Reader {
    /// Calls `check` with the value of `key`.
    fn get(&mut self, key: &[u8], check: Check<'_>) -> Result<(), CliError>;
    /// Calls `visit` on the records from `start` on, in key order, at most
    /// `limit` of them; returns how many it visited.
    fn scan(&mut self, start: &[u8], limit: u64, visit: Visit<'_>) -> Result<u64, CliError>;
}

/// The reads and writes of one transaction.
pub(crate) trait Txn {
    /// The value of `key` in `table`: the transaction's own write, else the
    /// database's.
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, CliError>;
    /// Sets `key` in `table` to `value` when the transaction commits.
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), CliError>;
}

/// Records to commit together: 16-byte keys and values of one length,
/// packed (no allocation per record).
pub(crate) struct Batch {
    value_len: usize,
    keys: Vec<[u8; KEY_LEN]>,
    values: Vec<u8>,
}

impl Batch {
    pub(crate) fn new(value_len: usize) -> Self {
        Batch {
            value_len,
            keys: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Adds record `index` with the value of `version`.
    pub(crate) fn push(&mut self, index: u64, version: u8) {
        self.keys.push(super::records::key(index));
        let at = self.values.len();
        self.values.resize(at + self.value_len, 0);
        if let Some(slot) = self.values.get_mut(at..) {
            value_into(index, version, slot);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
    }

    /// The records, in the order they were pushed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let len = self.value_len;
        self.keys.iter().enumerate().map(move |(j, k)| {
            let v = self.values.get(j * len..(j + 1) * len).unwrap_or(&[]);
            (&k[..], v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_yields_each_key_with_its_value_in_order() {
        let mut b = Batch::new(10);
        b.push(7, 0);
        b.push(3, 2);
        let got: Vec<(Vec<u8>, Vec<u8>)> =
            b.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        let mut v7 = vec![0u8; 10];
        let mut v3 = vec![0u8; 10];
        value_into(7, 0, &mut v7);
        value_into(3, 2, &mut v3);
        assert_eq!(
            got,
            vec![
                (super::super::records::key(7).to_vec(), v7),
                (super::super::records::key(3).to_vec(), v3)
            ]
        );
        assert_eq!(b.len(), 2);
        b.clear();
        assert!(b.is_empty());
        // Zero-length values: one empty value per key.
        let mut z = Batch::new(0);
        z.push(1, 0);
        z.push(2, 0);
        assert_eq!(z.iter().filter(|(_, v)| v.is_empty()).count(), 2);
    }
}
