//! Collection reads on an encrypted database, the shape of `sealkv bench`'s
//! `coll-range` and `coll-lookup`, for profiling.
//!
//! `cargo run --release -p sealkv-collections --example coll_reads -- [PERSONS] [TABLE] [WHAT]`
//!
//! Loads PERSONS persons (id, email, name, age; a unique index on the
//! email, a plain one on the age) into an AES-256-GCM database, 1,000 per
//! transaction, closes and reopens it, then times 200 ranges of two ages
//! (`Collection::range_by`) and PERSONS / 5 lookups by email
//! (`Collection::find_unique`), each row checked. TABLE is `plain` (the
//! default) or `sealed` (the email a sealed field, its index blind); WHAT
//! is `range`, `lookup` or anything else for both. The timed loops are the
//! functions `timed_ranges` and `timed_lookups`, for callgrind's
//! `--toggle-collect`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use serde::{Deserialize, Serialize};

use sealkv::crypto::MasterKey;
use sealkv::{Config, Db};
use sealkv_collections::{Collection, Index, Schema, Sealed};

const AGES: u32 = 100;
const RANGES: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Person {
    id: u64,
    email: String,
    name: String,
    age: u32,
}

#[derive(Serialize, Deserialize)]
struct SealedPerson {
    id: u64,
    email: Sealed<String>,
    name: String,
    age: u32,
}

fn email(id: u64) -> String {
    format!("user{id:010}@example.org")
}

fn age(id: u64) -> u32 {
    (id.wrapping_mul(7) % u64::from(AGES)) as u32
}

fn person(id: u64) -> Person {
    Person {
        id,
        email: email(id),
        name: format!("name {id}"),
        age: age(id),
    }
}

/// The ids `0..n` in a scattered order (a multiplicative step coprime
/// with `n`).
fn scattered(n: u64, i: u64) -> u64 {
    let mut step = 0x9E37_79B9u64 % n.max(1);
    while gcd(step, n) != 1 {
        step += 1;
    }
    (i.wrapping_mul(step)) % n
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The two tables, behind one face.
trait Table {
    fn load(&self, ids: &[u64]);
    fn by_email(&self, email: &str) -> Option<Person>;
    fn by_age(&self, lo: u32, hi: u32) -> Vec<Person>;
}

impl Table for Collection<Person, u64> {
    fn load(&self, ids: &[u64]) {
        self.db()
            .transaction(|tx| {
                let mut t = self.in_tx(tx);
                for &id in ids {
                    t.insert(&person(id))?;
                }
                Ok::<_, sealkv_collections::Error>(())
            })
            .unwrap();
    }
    fn by_email(&self, email: &str) -> Option<Person> {
        self.find_unique("email", email).unwrap()
    }
    fn by_age(&self, lo: u32, hi: u32) -> Vec<Person> {
        self.range_by("age", lo..hi).unwrap()
    }
}

impl Table for Collection<SealedPerson, u64> {
    fn load(&self, ids: &[u64]) {
        self.db()
            .transaction(|tx| {
                let mut t = self.in_tx(tx);
                for &id in ids {
                    let p = person(id);
                    t.insert(&SealedPerson {
                        id,
                        email: Sealed::new(p.email),
                        name: p.name,
                        age: p.age,
                    })?;
                }
                Ok::<_, sealkv_collections::Error>(())
            })
            .unwrap();
    }
    fn by_email(&self, email: &str) -> Option<Person> {
        self.find_unique("email", &Some(email.to_string()))
            .unwrap()
            .map(unsealed)
    }
    fn by_age(&self, lo: u32, hi: u32) -> Vec<Person> {
        self.range_by("age", lo..hi)
            .unwrap()
            .into_iter()
            .map(unsealed)
            .collect()
    }
}

fn unsealed(p: SealedPerson) -> Person {
    Person {
        id: p.id,
        email: p.email.into_value().unwrap(),
        name: p.name,
        age: p.age,
    }
}

fn plain(db: &Db) -> Collection<Person, u64> {
    Collection::open(
        db,
        Schema::new("person", |p: &Person| p.id)
            .index("email", Index::unique(), |p| p.email.clone())
            .index("age", Index::plain(), |p| p.age),
    )
    .unwrap()
}

fn sealed(db: &Db) -> Collection<SealedPerson, u64> {
    Collection::open(
        db,
        Schema::new("person", |p: &SealedPerson| p.id)
            .index("email", Index::unique().blind(), |p| {
                p.email.value().cloned()
            })
            .index("age", Index::plain(), |p| p.age),
    )
    .unwrap()
}

#[inline(never)]
fn timed_ranges(table: &dyn Table) -> u64 {
    let mut rows = 0;
    for q in 0..RANGES {
        let lo = q * 13 % (AGES - 2);
        let hi = lo + 2;
        let mut last = lo;
        for got in table.by_age(lo, hi) {
            assert!(got.age >= last && got.age < hi);
            assert_eq!(got, person(got.id));
            last = got.age;
            rows += 1;
        }
    }
    rows
}

#[inline(never)]
fn timed_lookups(table: &dyn Table, n: u64) -> u64 {
    let count = (n / 5).max(1);
    for i in 0..count {
        let want = person(scattered(n, i * 7 + 1));
        assert_eq!(table.by_email(&want.email).as_ref(), Some(&want));
    }
    count
}

fn run(table: &dyn Table, n: u64, what: &str) {
    if what != "lookup" {
        let start = Instant::now();
        let rows = timed_ranges(table);
        let t = start.elapsed();
        println!(
            "range:  {rows} rows in {t:?}, {:.0} ns/row",
            t.as_nanos() as f64 / rows as f64
        );
    }
    if what != "range" {
        let start = Instant::now();
        let count = timed_lookups(table, n);
        let t = start.elapsed();
        println!(
            "lookup: {count} lookups in {t:?}, {:.0} ns/lookup",
            t.as_nanos() as f64 / count as f64
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args.first().map_or(10_000, |a| a.parse().expect("PERSONS"));
    let sealed_table = args.get(1).is_some_and(|t| t == "sealed");
    let what = args.get(2).cloned().unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let config =
        || Config::new(dir.path()).encryption_key(MasterKey::from_bytes(&[0x42; 32]).unwrap());
    let db = config().open().unwrap();
    let ids: Vec<u64> = (0..n).map(|i| scattered(n, i)).collect();
    if sealed_table {
        let c = sealed(&db);
        ids.chunks(1_000).for_each(|chunk| c.load(chunk));
    } else {
        let c = plain(&db);
        ids.chunks(1_000).for_each(|chunk| c.load(chunk));
    }
    db.close().unwrap();
    let db = config().open().unwrap();
    if sealed_table {
        run(&sealed(&db), n, &what);
    } else {
        run(&plain(&db), n, &what);
    }
    let stats = db.stats().unwrap();
    println!(
        "memtable bytes {}, tree reads {}, cache hits {}, misses {}",
        stats.memtable_bytes, stats.tree_reads, stats.cache_hits, stats.cache_misses
    );
    db.close().unwrap();
}
