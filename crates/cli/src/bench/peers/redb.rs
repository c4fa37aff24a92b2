//! redb: one table in one file; every write transaction committed with
//! `Durability::Immediate`; its default 1 GiB cache.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, TableDefinition};

use super::failure;
use crate::bench::engine::{Batch, Check, Engine, Open, Reader, Store, Visit};
use crate::bench::records::fresh_dir;
use crate::exit::CliError;

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

const RECORDS: Def = TableDefinition::new("kv");

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
