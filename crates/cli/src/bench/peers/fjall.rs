//! fjall 3: one keyspace per [`Table`] in one database, at its defaults
//! (lz4, 32 MiB cache); batches and write transactions committed with
//! `PersistMode::SyncAll`. The transaction workloads open the same
//! directory as fjall's single-writer transactional database (the same
//! files; writers take turns, so a transaction never conflicts).

use std::path::{Path, PathBuf};

use fjall::{
    Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable, SingleWriterTxDatabase,
    SingleWriterTxKeyspace,
};

use super::failure;
use crate::bench::engine::{Batch, Body, Check, Engine, Open, Reader, Store, Table, Txn, Visit};
use crate::bench::records::fresh_dir;
use crate::exit::CliError;

const DURABLE: Option<PersistMode> = Some(PersistMode::SyncAll);

pub(crate) struct Fjall {
    dir: PathBuf,
}

impl Fjall {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Fjall { dir }
    }

    /// An error of fjall, naming its file.
    fn fail(&self, e: fjall::Error) -> CliError {
        failure("fjall", &self.dir, e)
    }
}

impl Engine for Fjall {
    fn name(&self) -> &'static str {
        "fjall"
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn session(
        &self,
        open: Open,
        work: &mut dyn FnMut(&dyn Store) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        let err = |e: fjall::Error| self.fail(e);
        match open {
            Open::Fresh => fresh_dir(&self.dir)?,
            Open::Existing | Open::Transactional if !self.dir.exists() => {
                return Err(err(fjall::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no database to open",
                ))));
            }
            Open::Existing | Open::Transactional => {}
        }
        // Dropping the handles closes the database (its journal synced).
        if open == Open::Transactional {
            let db = SingleWriterTxDatabase::builder(&self.dir)
                .open()
                .map_err(&err)?;
            let ks = |t: Table| db.keyspace(t.name(), KeyspaceCreateOptions::default);
            let store = TxStore {
                records: ks(Table::Records).map_err(&err)?,
                counters: ks(Table::Counters).map_err(&err)?,
                accounts: ks(Table::Accounts).map_err(&err)?,
                db: &db,
                engine: self,
            };
            work(&store)
        } else {
            let db = Database::builder(&self.dir).open().map_err(&err)?;
            let records = db
                .keyspace(Table::Records.name(), KeyspaceCreateOptions::default)
                .map_err(&err)?;
            work(&PlainStore {
                db: &db,
                records,
                engine: self,
            })
        }
    }
}

/// The database opened plainly: batches and point reads.
struct PlainStore<'a> {
    db: &'a Database,
    records: Keyspace,
    engine: &'a Fjall,
}

impl Store for PlainStore<'_> {
    fn write(&self, batch: &Batch) -> Result<(), CliError> {
        let mut b = self.db.batch().durability(DURABLE);
        for (k, v) in batch.iter() {
            b.insert(&self.records, k, v);
        }
        b.commit().map_err(|e| self.engine.fail(e))
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>, CliError> {
        Ok(Box::new(KeyspaceReader {
            records: &self.records,
            engine: self.engine,
        }))
    }

    fn transaction(&self, _body: Body<'_>) -> Result<(), CliError> {
        Err(CliError::Usage(
            "bench: fjall runs transactions in a transactional session".into(),
        ))
    }
}

/// Point reads on the keyspace (each at the latest commit), scans through
/// its range iterator.
struct KeyspaceReader<'a> {
    records: &'a Keyspace,
    engine: &'a Fjall,
}

impl Reader for KeyspaceReader<'_> {
    fn get(&mut self, key: &[u8], check: Check<'_>) -> Result<(), CliError> {
        let got = self.records.get(key).map_err(|e| self.engine.fail(e))?;
        check(got.as_deref())
    }

    fn scan(&mut self, start: &[u8], limit: u64, visit: Visit<'_>) -> Result<u64, CliError> {
        scan(self.records.range(start..), limit, visit, self.engine)
    }
}

/// Visits up to `limit` items of `iter`.
fn scan(iter: fjall::Iter, limit: u64, visit: Visit<'_>, engine: &Fjall) -> Result<u64, CliError> {
    let err = |e: fjall::Error| engine.fail(e);
    let mut seen = 0;
    for guard in iter {
        if seen == limit {
            break;
        }
        let (k, v) = guard.into_inner().map_err(&err)?;
        visit(&k, &v)?;
        seen += 1;
    }
    Ok(seen)
}

/// The database opened as fjall's single-writer transactional database.
struct TxStore<'a> {
    db: &'a SingleWriterTxDatabase,
    records: SingleWriterTxKeyspace,
    counters: SingleWriterTxKeyspace,
    accounts: SingleWriterTxKeyspace,
    engine: &'a Fjall,
}

impl TxStore<'_> {
    fn keyspace(&self, table: Table) -> &SingleWriterTxKeyspace {
        match table {
            Table::Records => &self.records,
            Table::Counters => &self.counters,
            Table::Accounts => &self.accounts,
        }
    }
}

impl Store for TxStore<'_> {
    fn write(&self, batch: &Batch) -> Result<(), CliError> {
        let mut tx = self.db.write_tx().durability(DURABLE);
        for (k, v) in batch.iter() {
            tx.insert(&self.records, k, v);
        }
        tx.commit().map_err(|e| self.engine.fail(e))
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>, CliError> {
        Ok(Box::new(TxReader { store: self }))
    }

    fn transaction(&self, body: Body<'_>) -> Result<(), CliError> {
        // One writer at a time: a second thread waits here.
        let mut tx = self.db.write_tx().durability(DURABLE);
        body(&mut FjallTxn {
            tx: &mut tx,
            store: self,
        })?;
        // An error above drops the transaction: fjall discards it.
        tx.commit().map_err(|e| self.engine.fail(e))
    }
}

struct TxReader<'a> {
    store: &'a TxStore<'a>,
}

impl Reader for TxReader<'_> {
    fn get(&mut self, key: &[u8], check: Check<'_>) -> Result<(), CliError> {
        let got = self
            .store
            .records
            .get(key)
            .map_err(|e| self.store.engine.fail(e))?;
        check(got.as_deref())
    }

    fn scan(&mut self, start: &[u8], limit: u64, visit: Visit<'_>) -> Result<u64, CliError> {
        let snapshot = self.store.db.read_tx();
        scan(
            snapshot.range(&self.store.records, start..),
            limit,
            visit,
            self.store.engine,
        )
    }
}

struct FjallTxn<'t, 'a> {
    tx: &'t mut fjall::SingleWriterWriteTx<'a>,
    store: &'t TxStore<'a>,
}

impl Txn for FjallTxn<'_, '_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, CliError> {
        let got = self
            .tx
            .get(self.store.keyspace(table), key)
            .map_err(|e| self.store.engine.fail(e))?;
        Ok(got.map(|v| v.to_vec()))
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), CliError> {
        self.tx.insert(self.store.keyspace(table), key, value);
        Ok(())
    }
}
