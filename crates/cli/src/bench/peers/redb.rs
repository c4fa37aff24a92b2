//! redb: one table per [`Table`] in one file; every write transaction
//! committed with `Durability::Immediate`; its default 1 GiB cache.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::failure;
use crate::bench::engine::{Batch, Body, Check, Engine, Open, Reader, Store, Table, Txn, Visit};
use crate::bench::records::fresh_dir;
use crate::exit::CliError;

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;
/// A table opened in a write transaction.
type WriteTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

const RECORDS: Def = TableDefinition::new("kv");
const COUNTERS: Def = TableDefinition::new("counters");
const ACCOUNTS: Def = TableDefinition::new("accounts");

fn definition(table: Table) -> Def {
    match table {
        Table::Records => RECORDS,
        Table::Counters => COUNTERS,
        Table::Accounts => ACCOUNTS,
    }
}

pub(crate) struct Redb {
    dir: PathBuf,
}

impl Redb {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Redb { dir }
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join("bench.redb")
    }

    /// A redb error, naming the file.
    fn fail(&self, e: impl Into<redb::Error>) -> CliError {
        failure("redb", &self.path(), e.into())
    }
}

impl Engine for Redb {
    fn name(&self) -> &'static str {
        "redb"
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn session(
        &self,
        open: Open,
        work: &mut dyn FnMut(&dyn Store) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        let db = if open == Open::Fresh {
            fresh_dir(&self.dir)?;
            redb::Database::create(self.path()).map_err(|e| self.fail(e))?
        } else {
            redb::Database::open(self.path()).map_err(|e| self.fail(e))?
        };
        work(&RedbStore {
            db: &db,
            engine: self,
        })
        // Dropping the database closes it.
    }
}

struct RedbStore<'a> {
    db: &'a redb::Database,
    engine: &'a Redb,
}

impl RedbStore<'_> {
    fn begin(&self) -> Result<redb::WriteTransaction, CliError> {
        let mut txn = self.db.begin_write().map_err(|e| self.engine.fail(e))?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| self.engine.fail(e))?;
        Ok(txn)
    }
}

impl Store for RedbStore<'_> {
    fn write(&self, batch: &Batch) -> Result<(), CliError> {
        let txn = self.begin()?;
        {
            let mut table = txn.open_table(RECORDS).map_err(|e| self.engine.fail(e))?;
            for (k, v) in batch.iter() {
                table.insert(k, v).map_err(|e| self.engine.fail(e))?;
            }
        }
        txn.commit().map_err(|e| self.engine.fail(e))
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>, CliError> {
        let txn = self.db.begin_read().map_err(|e| self.engine.fail(e))?;
        let table = txn.open_table(RECORDS).map_err(|e| self.engine.fail(e))?;
        Ok(Box::new(RedbReader {
            table,
            engine: self.engine,
        }))
    }

    fn transaction(&self, body: Body<'_>) -> Result<(), CliError> {
        let txn = self.begin()?;
        {
            let mut tx = RedbTxn {
                txn: &txn,
                tables: Vec::new(),
                engine: self.engine,
            };
            body(&mut tx)?;
        }
        // An error above drops the transaction: redb aborts it.
        txn.commit().map_err(|e| self.engine.fail(e))
    }
}

struct RedbReader<'a> {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    engine: &'a Redb,
}

impl Reader for RedbReader<'_> {
    fn get(&mut self, key: &[u8], check: Check<'_>) -> Result<(), CliError> {
        let got = self.table.get(key).map_err(|e| self.engine.fail(e))?;
        check(got.as_ref().map(|g| g.value()))
    }

    fn scan(&mut self, start: &[u8], limit: u64, visit: Visit<'_>) -> Result<u64, CliError> {
        let mut seen = 0;
        for item in self.table.range(start..).map_err(|e| self.engine.fail(e))? {
            if seen == limit {
                break;
            }
            let (k, v) = item.map_err(|e| self.engine.fail(e))?;
            visit(k.value(), v.value())?;
            seen += 1;
        }
        Ok(seen)
    }
}

/// A write transaction and the tables it opened (redb opens a table once
/// per transaction).
struct RedbTxn<'t> {
    txn: &'t redb::WriteTransaction,
    tables: Vec<(Table, WriteTable<'t>)>,
    engine: &'t Redb,
}

impl<'t> RedbTxn<'t> {
    fn table(&mut self, table: Table) -> Result<&mut WriteTable<'t>, CliError> {
        let at = match self.tables.iter().position(|(t, _)| *t == table) {
            Some(at) => at,
            None => {
                let opened = self
                    .txn
                    .open_table(definition(table))
                    .map_err(|e| self.engine.fail(e))?;
                self.tables.push((table, opened));
                self.tables.len() - 1
            }
        };
        self.tables
            .get_mut(at)
            .map(|(_, t)| t)
            .ok_or_else(|| CliError::CheckFailed("bench: redb table lost".into()))
    }
}

impl Txn for RedbTxn<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, CliError> {
        let engine = self.engine;
        let got = self.table(table)?.get(key).map_err(|e| engine.fail(e))?;
        Ok(got.map(|g| g.value().to_vec()))
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), CliError> {
        let engine = self.engine;
        self.table(table)?
            .insert(key, value)
            .map_err(|e| engine.fail(e))?;
        Ok(())
    }
}
