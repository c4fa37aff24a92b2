//! The peer engines of `sealkv bench --peers` (feature `peers`): the
//! comparison workloads on redb and on SQLite, with the same records as
//! sealkv's.
//!
//! The same keys, values and orders as [`super::workload`] (16-byte keys,
//! values from [`value_into`], random orders from [`Scatter`] with the same
//! salts), so the three engines hold identical data:
//!
//! - fillrandom: N puts in random order into a fresh database, one durable
//!   transaction per batch of 1,000 (redb: a write transaction with
//!   `Durability::Immediate`; SQLite: WAL journal, `synchronous=FULL`), timed
//!   until the database is closed;
//! - readrandom after reopen: N gets in random order, every value checked;
//! - scan: one full scan to warm the cache, the second timed, every value
//!   checked and the count compared with N;
//! - single durable puts: the median latency of one committed put.
//!
//! Each engine keeps its default cache: redb's is 1 GiB, SQLite's 2,000 KiB
//! of pages (plus the operating system's page cache, which every engine
//! here has too).

use std::path::{Path, PathBuf};
use std::time::Instant;

use redb::{ReadableDatabase, ReadableTable};
use rusqlite::{Connection, params};

use super::Peer;
use super::workload::{
    BATCH, Measure, SINGLE_PUTS, Scatter, Shape, Workload, key, mismatch, remove_dir, value_into,
};
use crate::exit::CliError;

/// Every peer, each with its own directory under `root`.
pub(crate) fn all(root: &Path, shape: Shape) -> Vec<Box<dyn Peer>> {
    vec![
        Box::new(Redb {
            dir: root.join(format!("v{}-redb", shape.value_len)),
            shape,
        }),
        Box::new(Sqlite {
            dir: root.join(format!("v{}-sqlite", shape.value_len)),
            shape,
        }),
    ]
}

/// The record index inside a 16-byte key, if it is one of ours.
fn index_of(key: &[u8]) -> Option<u64> {
    key.get(8..16)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

/// A fresh, empty directory at `dir`.
fn fresh_dir(dir: &Path) -> Result<(), CliError> {
    remove_dir(dir)?;
    std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// The median of single-operation latencies.
fn median(mut times: Vec<std::time::Duration>) -> Measure {
    times.sort();
    Measure::Latency(times.get(times.len() / 2).copied().unwrap_or_default())
}

/// The scan's check that it saw every record.
fn check_count(seen: u64, records: u64) -> Result<(), CliError> {
    if seen == records {
        Ok(())
    } else {
        Err(CliError::CheckFailed(format!(
            "bench: scan saw {seen} records, {records} were written"
        )))
    }
}

/// redb: one table of byte-string keys and values in one file.
pub(crate) struct Redb {
    dir: PathBuf,
    shape: Shape,
}

const TABLE: redb::TableDefinition<'static, &[u8], &[u8]> = redb::TableDefinition::new("kv");

impl Redb {
    fn path(&self) -> PathBuf {
        self.dir.join("bench.redb")
    }

    /// Maps a redb error to one that names the file.
    fn err(&self) -> impl Fn(redb::Error) -> CliError + '_ {
        move |e| CliError::Peer {
            engine: "redb",
            path: self.path(),
            message: e.to_string(),
        }
    }

    fn open(&self) -> Result<redb::Database, CliError> {
        redb::Database::open(self.path()).map_err(|e| (self.err())(e.into()))
    }

    /// Puts `records` (pairs of key index and value index, values of
    /// `round`) in one durable write transaction.
    fn commit(
        &self,
        db: &redb::Database,
        records: impl Iterator<Item = (u64, u64)>,
        round: u64,
    ) -> Result<(), redb::Error> {
        let mut value = vec![0u8; self.shape.value_len];
        let mut txn = db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)?;
        {
            let mut table = txn.open_table(TABLE)?;
            for (k, v) in records {
                value_into(v, round, &mut value);
                table.insert(&key(k)[..], &value[..])?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn fill(&self) -> Result<Measure, CliError> {
        fresh_dir(&self.dir)?;
        let db = redb::Database::create(self.path()).map_err(|e| (self.err())(e.into()))?;
        let n = self.shape.records;
        let order = Scatter::new(n, 7);
        let start = Instant::now();
        let mut i = 0;
        while i < n {
            let end = (i + BATCH).min(n);
            let batch = (i..end).map(|j| {
                let k = order.at(j);
                (k, k)
            });
            self.commit(&db, batch, 0).map_err(self.err())?;
            i = end;
        }
        drop(db);
        Ok(Measure::Throughput {
            ops: n,
            elapsed: start.elapsed(),
        })
    }

    fn read(&self) -> Result<Measure, CliError> {
        let db = self.open()?;
        let n = self.shape.records;
        let order = Scatter::new(n, 11);
        let mut expected = vec![0u8; self.shape.value_len];
        let err = self.err();
        let start = Instant::now();
        let txn = db.begin_read().map_err(|e| err(e.into()))?;
        let table = txn.open_table(TABLE).map_err(|e| err(e.into()))?;
        for i in 0..n {
            let k = order.at(i);
            value_into(k, 0, &mut expected);
            let got = table.get(&key(k)[..]).map_err(|e| err(e.into()))?;
            if got.as_ref().map(|g| g.value()) != Some(&expected[..]) {
                return Err(mismatch(k));
            }
        }
        let elapsed = start.elapsed();
        Ok(Measure::Throughput { ops: n, elapsed })
    }

    /// One full scan, every value checked; returns the count.
    fn scan_once(&self, db: &redb::Database) -> Result<u64, CliError> {
        let err = self.err();
        let txn = db.begin_read().map_err(|e| err(e.into()))?;
        let table = txn.open_table(TABLE).map_err(|e| err(e.into()))?;
        let mut expected = vec![0u8; self.shape.value_len];
        let mut seen = 0u64;
        for item in table.iter().map_err(|e| err(e.into()))? {
            let (k, v) = item.map_err(|e| err(e.into()))?;
            let i = index_of(k.value()).ok_or_else(|| mismatch(seen))?;
            value_into(i, 0, &mut expected);
            if v.value() != expected {
                return Err(mismatch(i));
            }
            seen += 1;
        }
        check_count(seen, self.shape.records)?;
        Ok(seen)
    }

    fn scan(&self) -> Result<Measure, CliError> {
        let db = self.open()?;
        self.scan_once(&db)?;
        let start = Instant::now();
        let seen = self.scan_once(&db)?;
        Ok(Measure::Throughput {
            ops: seen,
            elapsed: start.elapsed(),
        })
    }

    fn single_puts(&self) -> Result<Measure, CliError> {
        let db = self.open()?;
        let n = self.shape.records;
        let mut times = Vec::with_capacity(SINGLE_PUTS);
        for i in 0..SINGLE_PUTS as u64 {
            let start = Instant::now();
            self.commit(&db, std::iter::once((n + i, i)), 3)
                .map_err(self.err())?;
            times.push(start.elapsed());
        }
        Ok(median(times))
    }
}

impl Peer for Redb {
    fn name(&self) -> &'static str {
        "redb"
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn run(&self, workload: Workload) -> Result<Option<Measure>, CliError> {
        Ok(Some(match workload {
            Workload::FillRandom => self.fill()?,
            Workload::ReadRandomCold => self.read()?,
            Workload::Scan => self.scan()?,
            Workload::SinglePut => self.single_puts()?,
            _ => return Ok(None),
        }))
    }
}

/// SQLite (bundled, through rusqlite): a `WITHOUT ROWID` table with a BLOB
/// primary key, WAL journal, `synchronous=FULL`.
pub(crate) struct Sqlite {
    dir: PathBuf,
    shape: Shape,
}

const INSERT: &str = "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)";

impl Sqlite {
    fn path(&self) -> PathBuf {
        self.dir.join("bench.sqlite")
    }

    /// Maps a SQLite error to one that names the file.
    fn err(&self) -> impl Fn(rusqlite::Error) -> CliError + '_ {
        move |e| CliError::Peer {
            engine: "SQLite",
            path: self.path(),
            message: e.to_string(),
        }
    }

    /// Opens (creating if needed) with the bench's settings: WAL journal,
    /// `synchronous=FULL` (fsync of the WAL at every commit), the table.
    fn open(&self) -> Result<Connection, CliError> {
        let err = self.err();
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
        conn.execute(
            "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY NOT NULL, v BLOB NOT NULL) \
             WITHOUT ROWID",
            [],
        )
        .map_err(&err)?;
        Ok(conn)
    }

    /// Closes, checkpointing the WAL into the database file (the last
    /// connection to a WAL database does that on close).
    fn close(&self, conn: Connection) -> Result<(), CliError> {
        conn.close().map_err(|(_, e)| (self.err())(e))
    }

    fn fill(&self) -> Result<Measure, CliError> {
        fresh_dir(&self.dir)?;
        let mut conn = self.open()?;
        let err = self.err();
        let n = self.shape.records;
        let order = Scatter::new(n, 7);
        let mut value = vec![0u8; self.shape.value_len];
        let start = Instant::now();
        let mut i = 0;
        while i < n {
            let end = (i + BATCH).min(n);
            let tx = conn.transaction().map_err(&err)?;
            {
                let mut insert = tx.prepare_cached(INSERT).map_err(&err)?;
                for j in i..end {
                    let k = order.at(j);
                    value_into(k, 0, &mut value);
                    insert
                        .execute(params![&key(k)[..], &value[..]])
                        .map_err(&err)?;
                }
            }
            tx.commit().map_err(&err)?;
            i = end;
        }
        self.close(conn)?;
        Ok(Measure::Throughput {
            ops: n,
            elapsed: start.elapsed(),
        })
    }

    fn read(&self) -> Result<Measure, CliError> {
        let conn = self.open()?;
        let err = self.err();
        let n = self.shape.records;
        let order = Scatter::new(n, 11);
        let mut expected = vec![0u8; self.shape.value_len];
        let start = Instant::now();
        {
            let mut get = conn
                .prepare_cached("SELECT v FROM kv WHERE k = ?1")
                .map_err(&err)?;
            for i in 0..n {
                let k = order.at(i);
                value_into(k, 0, &mut expected);
                let mut rows = get.query(params![&key(k)[..]]).map_err(&err)?;
                let row = rows.next().map_err(&err)?.ok_or_else(|| mismatch(k))?;
                let got = row
                    .get_ref(0)
                    .map_err(&err)?
                    .as_blob()
                    .map_err(|e| err(e.into()))?;
                if got != expected {
                    return Err(mismatch(k));
                }
            }
        }
        let elapsed = start.elapsed();
        self.close(conn)?;
        Ok(Measure::Throughput { ops: n, elapsed })
    }

    /// One full scan in key order, every value checked; returns the count.
    fn scan_once(&self, conn: &Connection) -> Result<u64, CliError> {
        let err = self.err();
        let mut all = conn
            .prepare_cached("SELECT k, v FROM kv ORDER BY k")
            .map_err(&err)?;
        let mut rows = all.query([]).map_err(&err)?;
        let mut expected = vec![0u8; self.shape.value_len];
        let mut seen = 0u64;
        while let Some(row) = rows.next().map_err(&err)? {
            let k = row
                .get_ref(0)
                .map_err(&err)?
                .as_blob()
                .map_err(|e| err(e.into()))?;
            let i = index_of(k).ok_or_else(|| mismatch(seen))?;
            value_into(i, 0, &mut expected);
            let v = row
                .get_ref(1)
                .map_err(&err)?
                .as_blob()
                .map_err(|e| err(e.into()))?;
            if v != expected {
                return Err(mismatch(i));
            }
            seen += 1;
        }
        check_count(seen, self.shape.records)?;
        Ok(seen)
    }

    fn scan(&self) -> Result<Measure, CliError> {
        let conn = self.open()?;
        self.scan_once(&conn)?;
        let start = Instant::now();
        let seen = self.scan_once(&conn)?;
        let elapsed = start.elapsed();
        self.close(conn)?;
        Ok(Measure::Throughput { ops: seen, elapsed })
    }

    fn single_puts(&self) -> Result<Measure, CliError> {
        let conn = self.open()?;
        let err = self.err();
        let n = self.shape.records;
        let mut value = vec![0u8; self.shape.value_len];
        let mut times = Vec::with_capacity(SINGLE_PUTS);
        {
            let mut insert = conn.prepare_cached(INSERT).map_err(&err)?;
            for i in 0..SINGLE_PUTS as u64 {
                value_into(i, 3, &mut value);
                let start = Instant::now();
                // Autocommit: one durable transaction per statement.
                insert
                    .execute(params![&key(n + i)[..], &value[..]])
                    .map_err(&err)?;
                times.push(start.elapsed());
            }
        }
        self.close(conn)?;
        Ok(median(times))
    }
}

impl Peer for Sqlite {
    fn name(&self) -> &'static str {
        "SQLite"
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn run(&self, workload: Workload) -> Result<Option<Measure>, CliError> {
        Ok(Some(match workload {
            Workload::FillRandom => self.fill()?,
            Workload::ReadRandomCold => self.read()?,
            Workload::Scan => self.scan()?,
            Workload::SinglePut => self.single_puts()?,
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::bench::workload::{Mode, Target};

    /// The workloads the peers run in the comparison.
    const RUN: [Workload; 4] = [
        Workload::FillRandom,
        Workload::ReadRandomCold,
        Workload::Scan,
        Workload::SinglePut,
    ];

    fn shape(records: u64, value_len: usize) -> Shape {
        Shape { records, value_len }
    }

    fn redb(root: &Path, shape: Shape) -> Redb {
        Redb {
            dir: root.join("redb"),
            shape,
        }
    }

    fn sqlite(root: &Path, shape: Shape) -> Sqlite {
        Sqlite {
            dir: root.join("sqlite"),
            shape,
        }
    }

    /// Every (key, value) of a redb database, in key order.
    fn redb_dump(p: &Redb) -> Vec<(Vec<u8>, Vec<u8>)> {
        let db = p.open().unwrap();
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TABLE).unwrap();
        table
            .iter()
            .unwrap()
            .map(|item| {
                let (k, v) = item.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect()
    }

    /// Every (key, value) of a SQLite database, in key order.
    fn sqlite_dump(p: &Sqlite) -> Vec<(Vec<u8>, Vec<u8>)> {
        let conn = p.open().unwrap();
        let mut all = conn.prepare("SELECT k, v FROM kv ORDER BY k").unwrap();
        all.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn each_peer_runs_the_four_workloads_in_order_and_skips_the_others() {
        let tmp = tempfile::tempdir().unwrap();
        // 2,345 records: two full batches of 1,000 and a partial one.
        let shape = shape(2_345, 100);
        for peer in all(tmp.path(), shape) {
            for w in Workload::ALL {
                let got = peer.run(w).unwrap();
                match (RUN.contains(&w), got) {
                    (false, None) => {}
                    (true, Some(Measure::Throughput { ops, elapsed })) => {
                        assert_ne!(w, Workload::SinglePut, "{}", peer.name());
                        assert_eq!(ops, shape.records, "{} {w:?}", peer.name());
                        assert!(elapsed > std::time::Duration::ZERO);
                    }
                    (true, Some(Measure::Latency(d))) => {
                        assert_eq!(w, Workload::SinglePut, "{}", peer.name());
                        assert!(d > std::time::Duration::ZERO);
                    }
                    (runs, got) => panic!("{} {w:?}: runs {runs}, got {got:?}", peer.name()),
                }
            }
            assert!(peer.dir().starts_with(tmp.path()));
        }
    }

    #[test]
    fn the_peers_hold_exactly_the_records_sealkv_writes() {
        let tmp = tempfile::tempdir().unwrap();
        for shape in [shape(1_500, 100), shape(1, 13)] {
            let r = redb(tmp.path(), shape);
            let s = sqlite(tmp.path(), shape);
            r.fill().unwrap();
            s.fill().unwrap();
            let target = Target {
                mode: Mode::all().swap_remove(0),
                dir: tmp.path().join("sealkv"),
                shape,
                cache_mib: None,
            };
            target.run(Workload::FillRandom).unwrap();
            let db = sealkv::Db::open_with_config(
                sealkv::Config::new(&target.dir).create_if_missing(false),
            )
            .unwrap();
            let sealed: Vec<(Vec<u8>, Vec<u8>)> = db
                .range::<&[u8]>(..)
                .unwrap()
                .map(|item| {
                    let (k, v) = item.unwrap();
                    (k.to_vec(), v.to_vec())
                })
                .collect();
            db.close().unwrap();
            assert_eq!(sealed.len() as u64, shape.records);
            assert!(
                sealed
                    .iter()
                    .all(|(k, v)| k.len() == 16 && v.len() == shape.value_len)
            );
            assert_eq!(redb_dump(&r), sealed);
            assert_eq!(sqlite_dump(&s), sealed);
        }
    }

    #[test]
    fn single_puts_add_durable_records_after_the_fill() {
        let tmp = tempfile::tempdir().unwrap();
        let shape = shape(10, 20);
        let r = redb(tmp.path(), shape);
        let s = sqlite(tmp.path(), shape);
        r.fill().unwrap();
        s.fill().unwrap();
        assert!(matches!(r.single_puts().unwrap(), Measure::Latency(_)));
        assert!(matches!(s.single_puts().unwrap(), Measure::Latency(_)));
        let (a, b) = (redb_dump(&r), sqlite_dump(&s));
        assert_eq!(a.len(), 10 + SINGLE_PUTS);
        assert_eq!(a, b);
        let mut v = vec![0u8; 20];
        value_into(SINGLE_PUTS as u64 - 1, 3, &mut v);
        assert_eq!(
            a.last().unwrap(),
            &(key(9 + SINGLE_PUTS as u64).to_vec(), v)
        );
    }

    #[test]
    fn a_wrong_value_fails_the_reads_and_the_scan() {
        let tmp = tempfile::tempdir().unwrap();
        let shape = shape(300, 100);
        let r = redb(tmp.path(), shape);
        let s = sqlite(tmp.path(), shape);
        r.fill().unwrap();
        s.fill().unwrap();
        // Record 17 gets the value of another round.
        let mut wrong = vec![0u8; 100];
        value_into(17, 1, &mut wrong);
        {
            let db = r.open().unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(TABLE)
                .unwrap()
                .insert(&key(17)[..], &wrong[..])
                .unwrap();
            txn.commit().unwrap();
        }
        s.open()
            .unwrap()
            .execute(
                "UPDATE kv SET v = ?1 WHERE k = ?2",
                params![&wrong[..], &key(17)[..]],
            )
            .unwrap();
        for result in [r.read(), r.scan(), s.read(), s.scan()] {
            match result {
                Err(CliError::CheckFailed(m)) => assert!(m.contains("record 17 "), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_record_fails_the_reads_and_the_scan_count() {
        let tmp = tempfile::tempdir().unwrap();
        let shape = shape(50, 8);
        let r = redb(tmp.path(), shape);
        let s = sqlite(tmp.path(), shape);
        r.fill().unwrap();
        s.fill().unwrap();
        {
            let db = r.open().unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(TABLE).unwrap().remove(&key(3)[..]).unwrap();
            txn.commit().unwrap();
        }
        s.open()
            .unwrap()
            .execute("DELETE FROM kv WHERE k = ?1", params![&key(3)[..]])
            .unwrap();
        for result in [r.read(), s.read()] {
            match result {
                Err(CliError::CheckFailed(m)) => assert!(m.contains("record 3 "), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        for result in [r.scan(), s.scan()] {
            match result {
                Err(CliError::CheckFailed(m)) => {
                    assert!(m.contains("saw 49 records, 50 were written"), "{m}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_engine_error_names_the_engine_and_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let r = redb(tmp.path(), shape(5, 5));
        // No fill: there is no database file to open.
        match r.read() {
            Err(CliError::Peer {
                engine: "redb",
                path,
                message,
            }) => {
                assert_eq!(path, r.path());
                assert!(!message.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // A SQLite file that is not a database.
        let s = sqlite(tmp.path(), shape(5, 5));
        std::fs::create_dir_all(&s.dir).unwrap();
        std::fs::write(s.path(), vec![0x5a; 8192]).unwrap();
        match s.read() {
            Err(CliError::Peer {
                engine: "SQLite",
                path,
                ..
            }) => assert_eq!(path, s.path()),
            other => panic!("{other:?}"),
        }
        let e = s.read().unwrap_err().to_string();
        assert!(e.starts_with("SQLite at "), "{e}");
    }
}
