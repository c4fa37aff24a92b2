//! One-run comparison of sealkv-collections (encrypted at rest) with
//! SQLite on the same table and indexes: inserts with two secondary
//! indexes, lookups by a unique index, ranges over a non-unique index.
//!
//! ```sh
//! cargo run --release -p sealkv-collections --features sqlite-bench \
//!     --example bench_collections -- [RECORDS]
//! ```
//!
//! Both sides commit 1,000 inserts per transaction and make each commit
//! durable (SQLite: WAL journal, `synchronous = FULL`; sealkv: its default
//! sync mode), and both build the record as a Rust struct on reads. Three
//! sealkv rows: a plain unique email index; the email sealed with a blind
//! index (a keyed tag on disk, the field sealed on its own); and the
//! plain index in a database with encryption at rest off.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use sealkv::Config;
use sealkv::crypto::MasterKey;
use sealkv_collections::{Collection, Index, Schema, Sealed};

const BATCH: u64 = 1_000;
const LOOKUPS: u64 = 20_000;
const AGES: u64 = 100;
const RANGES: u64 = 200;

#[derive(Debug, Serialize, Deserialize)]
struct Person {
    id: u64,
    email: String,
    name: String,
    age: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct SealedPerson {
    id: u64,
    email: Sealed<String>,
    name: String,
    age: u32,
}

/// A permutation of 0..n (multiplication by a prime that does not divide
/// n), so inserts and lookups come in no key order.
fn scatter(i: u64, n: u64) -> u64 {
    const PRIME: u128 = 1_000_003;
    ((u128::from(i) * PRIME) % u128::from(n)) as u64
}

fn email(i: u64) -> String {
    format!("user{i:010}@example.org")
}

fn age(i: u64) -> u32 {
    (i * 7 % AGES) as u32
}

struct Figures {
    insert: Duration,
    lookup: Duration,
    range: Duration,
    rows: u64,
}

trait Side {
    fn insert(&mut self, ids: &[u64]);
    fn lookup(&mut self, i: u64) -> u64;
    fn range(&mut self, lo: u32, hi: u32) -> u64;
}

fn run(side: &mut dyn Side, n: u64) -> Figures {
    assert!(
        n > 0 && !n.is_multiple_of(1_000_003),
        "RECORDS must be positive and not a multiple of 1000003"
    );
    let ids: Vec<u64> = (0..n).map(|i| scatter(i, n)).collect();
    let start = Instant::now();
    for chunk in ids.chunks(BATCH as usize) {
        side.insert(chunk);
    }
    let insert = start.elapsed();
    let start = Instant::now();
    for i in 0..LOOKUPS {
        assert_eq!(side.lookup(scatter(i * 31 + 5, n)), 1);
    }
    let lookup = start.elapsed();
    let start = Instant::now();
    let mut rows = 0;
    for q in 0..RANGES {
        let lo = (q * 13 % (AGES - 2)) as u32;
        rows += side.range(lo, lo + 2);
    }
    let range = start.elapsed();
    Figures {
        insert,
        lookup,
        range,
        rows,
    }
}

struct Plain(Collection<Person, u64>);

impl Side for Plain {
    fn insert(&mut self, ids: &[u64]) {
        self.0
            .db()
            .transaction(|tx| {
                let mut c = self.0.in_tx(tx);
                for &i in ids {
                    c.insert(&Person {
                        id: i,
                        email: email(i),
                        name: format!("name {i}"),
                        age: age(i),
                    })?;
                }
                Ok::<_, sealkv_collections::Error>(())
            })
            .unwrap();
    }
    fn lookup(&mut self, i: u64) -> u64 {
        let p = self.0.find_unique("email", &email(i)).unwrap().unwrap();
        u64::from(p.id == i)
    }
    fn range(&mut self, lo: u32, hi: u32) -> u64 {
        self.0.range_by("age", lo..hi).unwrap().len() as u64
    }
}

struct Blind(Collection<SealedPerson, u64>);

impl Side for Blind {
    fn insert(&mut self, ids: &[u64]) {
        self.0
            .db()
            .transaction(|tx| {
                let mut c = self.0.in_tx(tx);
                for &i in ids {
                    c.insert(&SealedPerson {
                        id: i,
                        email: Sealed::new(email(i)),
                        name: format!("name {i}"),
                        age: age(i),
                    })?;
                }
                Ok::<_, sealkv_collections::Error>(())
            })
            .unwrap();
    }
    fn lookup(&mut self, i: u64) -> u64 {
        let p = self
            .0
            .find_unique("email", &Some(email(i)))
            .unwrap()
            .unwrap();
        u64::from(p.id == i)
    }
    fn range(&mut self, lo: u32, hi: u32) -> u64 {
        self.0.range_by("age", lo..hi).unwrap().len() as u64
    }
}

struct Sqlite(Connection);

impl Side for Sqlite {
    fn insert(&mut self, ids: &[u64]) {
        let tx = self.0.transaction().unwrap();
        {
            let mut st = tx
                .prepare_cached("INSERT INTO person (id, email, name, age) VALUES (?1, ?2, ?3, ?4)")
                .unwrap();
            for &i in ids {
                st.execute(params![i as i64, email(i), format!("name {i}"), age(i)])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    fn lookup(&mut self, i: u64) -> u64 {
        let mut st = self
            .0
            .prepare_cached("SELECT id, email, name, age FROM person WHERE email = ?1")
            .unwrap();
        let p = st
            .query_row(params![email(i)], |r| {
                Ok(Person {
                    id: r.get::<_, i64>(0)? as u64,
                    email: r.get(1)?,
                    name: r.get(2)?,
                    age: r.get(3)?,
                })
            })
            .unwrap();
        u64::from(p.id == i)
    }
    fn range(&mut self, lo: u32, hi: u32) -> u64 {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT id, email, name, age FROM person WHERE age >= ?1 AND age < ?2 ORDER BY age",
            )
            .unwrap();
        let rows = st
            .query_map(params![lo, hi], |r| {
                Ok(Person {
                    id: r.get::<_, i64>(0)? as u64,
                    email: r.get(1)?,
                    name: r.get(2)?,
                    age: r.get(3)?,
                })
            })
            .unwrap();
        rows.map(Result::unwrap).count() as u64
    }
}

fn sealkv_config(dir: &Path, encrypted: bool) -> Config {
    Config::new(dir)
        .encryption_key(MasterKey::from_bytes(&[7; 32]).unwrap())
        .encrypt_at_rest(encrypted)
}

fn sqlite(dir: &Path) -> Connection {
    let conn = Connection::open(dir.join("bench.sqlite")).unwrap();
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .unwrap();
    assert!(mode.eq_ignore_ascii_case("wal"));
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE person (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, age INTEGER NOT NULL);
         CREATE UNIQUE INDEX person_email ON person(email);
         CREATE INDEX person_age ON person(age);",
    )
    .unwrap();
    conn
}

fn rate(ops: u64, d: Duration) -> f64 {
    ops as f64 / d.as_secs_f64()
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("RECORDS is a number"));
    let root = tempfile::tempdir().unwrap();
    let plain_schema = || {
        Schema::new("person", |p: &Person| p.id)
            .index("email", Index::unique(), |p| p.email.clone())
            .index("age", Index::plain(), |p| p.age)
    };
    let mut results: Vec<(&str, Figures)> = Vec::new();

    let db = sealkv_config(&root.path().join("enc"), true)
        .open()
        .unwrap();
    let mut side = Plain(Collection::open(&db, plain_schema()).unwrap());
    results.push(("sealkv encrypted, plain indexes", run(&mut side, n)));
    drop((side, db));

    let db = sealkv_config(&root.path().join("blind"), true)
        .open()
        .unwrap();
    let schema = Schema::new("person", |p: &SealedPerson| p.id)
        .index("email", Index::unique().blind(), |p| {
            p.email.value().cloned()
        })
        .index("age", Index::plain(), |p| p.age);
    let mut side = Blind(Collection::open(&db, schema).unwrap());
    results.push((
        "sealkv encrypted, sealed email + blind index",
        run(&mut side, n),
    ));
    drop((side, db));

    let db = sealkv_config(&root.path().join("plain"), false)
        .open()
        .unwrap();
    let mut side = Plain(Collection::open(&db, plain_schema()).unwrap());
    results.push(("sealkv plaintext, plain indexes", run(&mut side, n)));
    drop((side, db));

    let sqlite_dir = root.path().join("sqlite");
    std::fs::create_dir_all(&sqlite_dir).unwrap();
    let mut side = Sqlite(sqlite(&sqlite_dir));
    results.push(("SQLite (plaintext)", run(&mut side, n)));

    let rows = results[0].1.rows;
    assert!(
        results.iter().all(|(_, f)| f.rows == rows),
        "every side returns the same rows"
    );
    println!(
        "{n} records, {BATCH} inserts per durable commit; {LOOKUPS} lookups by unique email; {RANGES} ranges over age ({rows} rows)"
    );
    println!("| engine | insert/s | lookup/s | range rows/s |");
    println!("|---|---:|---:|---:|");
    for (name, f) in &results {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            rate(n, f.insert),
            rate(LOOKUPS, f.lookup),
            rate(f.rows, f.range)
        );
    }
    let sq = &results[results.len() - 1].1;
    println!("\nratios over SQLite (higher is faster):");
    for (name, f) in &results[..results.len() - 1] {
        println!(
            "{name}: insert {:.2}, lookup {:.2}, range {:.2}",
            sq.insert.as_secs_f64() / f.insert.as_secs_f64(),
            sq.lookup.as_secs_f64() / f.lookup.as_secs_f64(),
            sq.range.as_secs_f64() / f.range.as_secs_f64()
        );
    }
}
