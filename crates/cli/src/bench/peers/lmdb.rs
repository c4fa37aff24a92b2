//! LMDB, through heed (LMDB's C source bundled): one named database per
//! [`Table`] in one environment, LMDB's default flags (every write
//! transaction's commit fsyncs), no cache of its own: reads go through the
//! memory map, so the operating system's page cache is LMDB's cache.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{CommitOrAbort, Env, EnvOpenOptions};

use super::failure;
use crate::bench::engine::{Batch, Body, Check, Engine, Open, Reader, Store, Table, Txn, Visit};
use crate::bench::records::fresh_dir;
use crate::exit::CliError;

/// The memory map's size: the most the environment may grow to. Address
/// space only; the file grows as pages are written.
const MAP_SIZE: usize = 64 << 30;

type Db<'e> = heed::Database<'e, Bytes, Bytes>;

pub(crate) struct Lmdb {
    dir: PathBuf,
}

impl Lmdb {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Lmdb { dir }
    }

    /// An error of LMDB, naming its file.
    fn fail(&self, e: heed::Error) -> CliError {
        failure("LMDB", &self.dir.join("data.mdb"), e)
    }

    /// Opens the environment in the directory.
    #[allow(unsafe_code)]
    fn env(&self) -> Result<Env, CliError> {
        let mut options = EnvOpenOptions::new();
        options.map_size(MAP_SIZE).max_dbs(3);
        // SAFETY: heed marks opening an environment unsafe because the
        // memory map is undefined behaviour if the file changes under it
        // other than through LMDB. The directory is this benchmark's own
        // temporary directory, written only through this environment, which
        // is opened once at a time (a session closes it, and waits for the
        // close, before the next opens it).
        unsafe { options.open(&self.dir) }.map_err(|e| self.fail(e))
    }
}

impl Engine for Lmdb {
    fn name(&self) -> &'static str {
        "LMDB"
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn session(
        &self,
        open: Open,
        work: &mut dyn FnMut(&dyn Store) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        let err = |e: heed::Error| self.fail(e);
        if open == Open::Fresh {
            fresh_dir(&self.dir)?;
        } else if !self.dir.join("data.mdb").exists() {
            return Err(err(heed::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no environment to open",
            ))));
        }
        let env = self.env()?;
        let result = (|| {
            let wtxn = env.write_txn().map_err(&err)?;
            let [records, counters, accounts] = env
                .create_databases_and_commit(wtxn, |opener, wtxn| {
                    let mut create = |table: Table| {
                        opener.create_database::<Bytes, Bytes>(wtxn, Some(table.name()))
                    };
                    Ok::<_, heed::Error>(CommitOrAbort::<_, ()>::Commit([
                        create(Table::Records)?,
                        create(Table::Counters)?,
                        create(Table::Accounts)?,
                    ]))
                })
                .map_err(&err)?
                .unwrap_commit();
            work(&LmdbStore {
                env: &env,
                dbs: Dbs {
                    records,
                    counters,
                    accounts,
                },
                engine: self,
            })
        })();
        // Closed once the last handle is gone; wait for it, so the next
        // session opens it anew.
        env.prepare_for_closing().wait();
        result
    }
}

#[derive(Clone, Copy)]
struct Dbs<'e> {
    records: Db<'e>,
    counters: Db<'e>,
    accounts: Db<'e>,
}

impl<'e> Dbs<'e> {
    fn of(&self, table: Table) -> Db<'e> {
        match table {
            Table::Records => self.records,
            Table::Counters => self.counters,
            Table::Accounts => self.accounts,
        }
    }
}

struct LmdbStore<'e> {
    env: &'e Env,
    dbs: Dbs<'e>,
    engine: &'e Lmdb,
}

impl Store for LmdbStore<'_> {
    fn write(&self, batch: &Batch) -> Result<(), CliError> {
        let engine = self.engine;
        let err = |e: heed::Error| engine.fail(e);
        let mut wtxn = self.env.write_txn().map_err(&err)?;
        for (k, v) in batch.iter() {
            self.dbs.records.put(&mut wtxn, k, v).map_err(&err)?;
        }
        wtxn.commit().map_err(&err)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>, CliError> {
        let engine = self.engine;
        let err = |e: heed::Error| engine.fail(e);
        Ok(Box::new(LmdbReader {
            txn: self.env.read_txn().map_err(&err)?,
            db: self.dbs.records,
            engine: self.engine,
        }))
    }

    fn transaction(&self, body: Body<'_>) -> Result<(), CliError> {
        let engine = self.engine;
        let err = |e: heed::Error| engine.fail(e);
        // LMDB has one writer at a time: a second thread waits here.
        let mut wtxn = self.env.write_txn().map_err(&err)?;
        body(&mut LmdbTxn {
            txn: &mut wtxn,
            dbs: self.dbs,
            engine: self.engine,
        })?;
        // An error above drops the transaction: LMDB aborts it.
        wtxn.commit().map_err(&err)
    }
}

struct LmdbReader<'e> {
    txn: heed::RoTxn<'e, heed::WithTls>,
    db: Db<'e>,
    engine: &'e Lmdb,
}

impl Reader for LmdbReader<'_> {
    fn get(&mut self, key: &[u8], check: Check<'_>) -> Result<(), CliError> {
        let got = self
            .db
            .get(&self.txn, key)
            .map_err(|e| self.engine.fail(e))?;
        check(got)
    }

    fn scan(&mut self, start: &[u8], limit: u64, visit: Visit<'_>) -> Result<u64, CliError> {
        let engine = self.engine;
        let err = |e: heed::Error| engine.fail(e);
        // LMDB refuses an empty key, even as a bound.
        let from = if start.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Included(start)
        };
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (from, Bound::Unbounded);
        let mut seen = 0;
        for item in self.db.range(&self.txn, &range).map_err(&err)? {
            if seen == limit {
                break;
            }
            let (k, v) = item.map_err(&err)?;
            visit(k, v)?;
            seen += 1;
        }
        Ok(seen)
    }
}

struct LmdbTxn<'t, 'e> {
    txn: &'t mut heed::RwTxn<'e>,
    dbs: Dbs<'e>,
    engine: &'e Lmdb,
}

impl Txn for LmdbTxn<'_, '_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, CliError> {
        let got = self
            .dbs
            .of(table)
            .get(self.txn, key)
            .map_err(|e| self.engine.fail(e))?;
        Ok(got.map(<[u8]>::to_vec))
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), CliError> {
        self.dbs
            .of(table)
            .put(self.txn, key, value)
            .map_err(|e| self.engine.fail(e))
    }
}
