//! SQLite (bundled, through rusqlite): a `WITHOUT ROWID` table with a BLOB
//! primary key per [`Table`], WAL journal, `synchronous=FULL` (an fsync of
//! the WAL at every commit), its default 2,000 KiB page cache.
//!
//! A connection serves one thread at a time: the store keeps a pool and a
//! thread takes one for each read view or transaction, so the transaction
//! workloads run on a connection per thread, their transactions `BEGIN
//! IMMEDIATE` (the write lock taken up front, waited for through the busy
//! timeout).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};

use super::failure;
use crate::bench::engine::{
    Batch, Body, Check, Engine, Open, PeopleWork, Reader, Store, Table, Txn, Visit,
};
use crate::bench::people::{People, Person, Table as PeopleTable, VisitPerson};
use crate::bench::records::fresh_dir;
use crate::exit::CliError;

/// How long a connection waits for another's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Sqlite {
    dir: PathBuf,
}

impl Sqlite {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Sqlite { dir }
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join("bench.sqlite")
    }

    /// An error of SQLite, naming its file.
    fn fail(&self, e: rusqlite::Error) -> CliError {
        failure("SQLite", &self.path(), e)
    }

    /// Opens a connection with the bench's settings, the tables created.
    pub(crate) fn connect(&self) -> Result<Connection, CliError> {
        let err = |e: rusqlite::Error| self.fail(e);
        let conn = Connection::open(self.path()).map_err(&err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(&err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(CliError::Peer {
                engine: "SQLite",
                path: self.path(),
                message: format!("journal_mode is {mode}, not wal"),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(&err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
        for table in [Table::Records, Table::Counters, Table::Accounts] {
            conn.execute(
                &format!(
                    "CREATE TABLE IF NOT EXISTS {} (k BLOB PRIMARY KEY NOT NULL, \
                     v BLOB NOT NULL) WITHOUT ROWID",
                    table.name()
                ),
                [],
            )
            .map_err(&err)?;
        }
        Ok(conn)
    }
}

impl Engine for Sqlite {
    fn name(&self) -> &'static str {
        "SQLite"
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn session(
        &self,
        open: Open,
        work: &mut dyn FnMut(&dyn Store) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        if open == Open::Fresh {
            fresh_dir(&self.dir)?;
        } else if !self.path().exists() {
            return Err(CliError::Peer {
                engine: "SQLite",
                path: self.path(),
                message: "no database to open".into(),
            });
        }
        let store = SqliteStore {
            engine: self,
            pool: Mutex::new(vec![self.connect()?]),
        };
        let result = work(&store);
        // Closing the last connection checkpoints the WAL into the
        // database file.
        let pool = store.pool.into_inner().unwrap_or_else(|p| p.into_inner());
        for conn in pool {
            conn.close().map_err(|(_, e)| self.fail(e))?;
        }
        result
    }

    fn runs_people(&self) -> bool {
        true
    }

    /// The same table whichever `table` is asked for: SQLite has no sealed
    /// fields.
    fn people(
        &self,
        fresh: bool,
        _table: PeopleTable,
        work: PeopleWork<'_>,
    ) -> Result<(), CliError> {
        if fresh {
            fresh_dir(&self.dir)?;
        }
        let people = SqlitePeople {
            conn: self.connect_people(fresh)?,
            engine: self,
        };
        let result = work(&people);
        people
            .conn
            .close()
            .map_err(|(_, e)| failure("SQLite", &self.people_path(), e))?;
        result
    }
}

/// The statements, per table.
fn select(table: Table) -> &'static str {
    match table {
        Table::Records => "SELECT v FROM kv WHERE k = ?1",
        Table::Counters => "SELECT v FROM counters WHERE k = ?1",
        Table::Accounts => "SELECT v FROM accounts WHERE k = ?1",
    }
}

fn upsert(table: Table) -> &'static str {
    match table {
        Table::Records => "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)",
        Table::Counters => "INSERT OR REPLACE INTO counters (k, v) VALUES (?1, ?2)",
        Table::Accounts => "INSERT OR REPLACE INTO accounts (k, v) VALUES (?1, ?2)",
    }
}

struct SqliteStore<'a> {
    engine: &'a Sqlite,
    pool: Mutex<Vec<Connection>>,
}

impl SqliteStore<'_> {
    /// A connection for this thread: one from the pool, or a new one.
    fn take(&self) -> Result<Connection, CliError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => self.engine.connect(),
        }
    }

    fn give_back(&self, conn: Connection) {
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }

    /// Runs `f` on a connection of the pool.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        let mut conn = self.take()?;
        let out = f(&mut conn);
        self.give_back(conn);
        out
    }
}

impl Store for SqliteStore<'_> {
    fn write(&self, batch: &Batch) -> Result<(), CliError> {
        let engine = self.engine;
        let err = |e: rusqlite::Error| engine.fail(e);
        self.with(|conn| {
            let tx = conn.transaction().map_err(&err)?;
            {
                let mut insert = tx.prepare_cached(upsert(Table::Records)).map_err(&err)?;
                for (k, v) in batch.iter() {
                    insert.execute(params![k, v]).map_err(&err)?;
                }
            }
            tx.commit().map_err(&err)
        })
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>, CliError> {
        Ok(Box::new(SqliteReader {
            conn: Some(self.take()?),
            store: self,
        }))
    }

    fn transaction(&self, body: Body<'_>) -> Result<(), CliError> {
        let engine = self.engine;
        let err = |e: rusqlite::Error| engine.fail(e);
        self.with(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            body(&mut SqliteTxn {
                tx: &tx,
                engine: self.engine,
            })?;
            tx.commit().map_err(&err)
        })
    }
}

/// A connection taken from the pool for reads (autocommit: each statement
/// reads the latest commit), given back when dropped.
struct SqliteReader<'a> {
    conn: Option<Connection>,
    store: &'a SqliteStore<'a>,
}

impl Drop for SqliteReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.store.give_back(conn);
        }
    }
}

impl SqliteReader<'_> {
    fn conn(&self) -> Result<&Connection, CliError> {
        self.conn.as_ref().ok_or_else(|| CliError::Peer {
            engine: "SQLite",
            path: self.store.engine.path(),
            message: "reader without a connection".into(),
        })
    }
}

impl Reader for SqliteReader<'_> {
    fn get(&mut self, key: &[u8], check: Check<'_>) -> Result<(), CliError> {
        let engine = self.store.engine;
        let err = |e: rusqlite::Error| engine.fail(e);
        let mut get = self
            .conn()?
            .prepare_cached(select(Table::Records))
            .map_err(&err)?;
        let mut rows = get.query(params![key]).map_err(&err)?;
        match rows.next().map_err(&err)? {
            None => check(None),
            Some(row) => {
                let v = row
                    .get_ref(0)
                    .map_err(&err)?
                    .as_blob()
                    .map_err(|e| err(e.into()))?;
                check(Some(v))
            }
        }
    }

    fn scan(&mut self, start: &[u8], limit: u64, visit: Visit<'_>) -> Result<u64, CliError> {
        let engine = self.store.engine;
        let err = |e: rusqlite::Error| engine.fail(e);
        let mut range = self
            .conn()?
            .prepare_cached("SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2")
            .map_err(&err)?;
        // A negative LIMIT is no limit.
        let limit = i64::try_from(limit).unwrap_or(-1);
        let mut rows = range.query(params![start, limit]).map_err(&err)?;
        let mut seen = 0;
        while let Some(row) = rows.next().map_err(&err)? {
            let k = row
                .get_ref(0)
                .map_err(&err)?
                .as_blob()
                .map_err(|e| err(e.into()))?;
            let v = row
                .get_ref(1)
                .map_err(&err)?
                .as_blob()
                .map_err(|e| err(e.into()))?;
            visit(k, v)?;
            seen += 1;
        }
        Ok(seen)
    }
}

struct SqliteTxn<'t> {
    tx: &'t rusqlite::Transaction<'t>,
    engine: &'t Sqlite,
}

impl Txn for SqliteTxn<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, CliError> {
        let engine = self.engine;
        let err = |e: rusqlite::Error| engine.fail(e);
        let mut get = self.tx.prepare_cached(select(table)).map_err(&err)?;
        let mut rows = get.query(params![key]).map_err(&err)?;
        match rows.next().map_err(&err)? {
            None => Ok(None),
            Some(row) => Ok(Some(row.get(0).map_err(&err)?)),
        }
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), CliError> {
        let engine = self.engine;
        let err = |e: rusqlite::Error| engine.fail(e);
        self.tx
            .prepare_cached(upsert(table))
            .map_err(&err)?
            .execute(params![key, value])
            .map_err(&err)?;
        Ok(())
    }
}

impl Sqlite {
    /// The file of the `person` table.
    fn people_path(&self) -> PathBuf {
        self.dir.join("people.sqlite")
    }

    /// Opens the `person` table (id, email, name, age) with a unique index
    /// on the email and a plain one on the age, creating it when `fresh`.
    fn connect_people(&self, fresh: bool) -> Result<Connection, CliError> {
        let path = self.people_path();
        let err = |e: rusqlite::Error| failure("SQLite", &path, e);
        if !fresh && !path.exists() {
            return Err(CliError::Peer {
                engine: "SQLite",
                path,
                message: "no person table to open".into(),
            });
        }
        let conn = Connection::open(&path).map_err(err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(failure(
                "SQLite",
                &path,
                format!("journal_mode is {mode}, not wal"),
            ));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS person (id INTEGER PRIMARY KEY, email TEXT NOT NULL, \
             name TEXT NOT NULL, age INTEGER NOT NULL);
             CREATE UNIQUE INDEX IF NOT EXISTS person_email ON person(email);
             CREATE INDEX IF NOT EXISTS person_age ON person(age);",
        )
        .map_err(err)?;
        Ok(conn)
    }
}

/// The `person` table on one connection.
struct SqlitePeople<'a> {
    conn: Connection,
    engine: &'a Sqlite,
}

impl SqlitePeople<'_> {
    fn fail(&self, e: rusqlite::Error) -> CliError {
        failure("SQLite", &self.engine.people_path(), e)
    }
}

/// A row of `person` (id, email, name, age) as a [`Person`].
fn person(row: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person {
        id: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(u64::MAX),
        email: row.get(1)?,
        name: row.get(2)?,
        age: row.get(3)?,
    })
}

impl People for SqlitePeople<'_> {
    fn insert(&self, ids: &[u64]) -> Result<(), CliError> {
        let err = |e| self.fail(e);
        let tx = self.conn.unchecked_transaction().map_err(err)?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO person (id, email, name, age) VALUES (?1, ?2, ?3, ?4)")
                .map_err(err)?;
            for &id in ids {
                let p = Person::of(id);
                let id = i64::try_from(p.id)
                    .map_err(|e| failure("SQLite", &self.engine.people_path(), e))?;
                insert
                    .execute(params![id, p.email, p.name, p.age])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn by_email(&self, email: &str) -> Result<Option<Person>, CliError> {
        let err = |e| self.fail(e);
        let mut find = self
            .conn
            .prepare_cached("SELECT id, email, name, age FROM person WHERE email = ?1")
            .map_err(err)?;
        let mut rows = find.query(params![email]).map_err(err)?;
        match rows.next().map_err(err)? {
            None => Ok(None),
            Some(row) => Ok(Some(person(row).map_err(err)?)),
        }
    }

    fn by_age(&self, lo: u32, hi: u32, visit: VisitPerson<'_>) -> Result<(), CliError> {
        let err = |e| self.fail(e);
        let mut range = self
            .conn
            .prepare_cached(
                "SELECT id, email, name, age FROM person WHERE age >= ?1 AND age < ?2 ORDER BY age",
            )
            .map_err(err)?;
        let mut rows = range.query(params![lo, hi]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            visit(person(row).map_err(err)?)?;
        }
        Ok(())
    }
}
