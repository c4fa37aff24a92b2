//! The collections workloads: a `person` table (id, email, name, age) with
//! a unique index on the email and a plain one on the age, on
//! sealkv-collections and on SQLite (the same table and indexes), written
//! once against [`People`].
//!
//! - `coll-insert`: N persons into a fresh table, in scattered id order,
//!   1,000 per durable transaction.
//! - `coll-lookup`: [`lookups`] persons found by their email, each the
//!   whole record checked.
//! - `coll-range`: [`RANGES`] ranges of two ages, every row checked (its
//!   age inside the range, in age order, the whole record) and each
//!   range's count; ops are the rows returned.
//!
//! The `-sealed` variants run the same on a table whose email is sealed
//! (field-encrypted on its own) and indexed by a blind index (a keyed tag,
//! neither the email nor a deterministic ciphertext of it on disk); the
//! engines without sealed fields run their plain table again.

use std::time::Instant;

use super::engine::Engine;
use super::records::Scatter;
use super::workload::{BATCH, Measure, Shape};
use crate::exit::CliError;

/// Ages 0..AGES, spread evenly over the persons.
pub(crate) const AGES: u32 = 100;
/// Ranges timed by `coll-range`, each over two ages.
pub(crate) const RANGES: u32 = 200;

/// One person: what every engine stores and every read is checked against.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Person {
    pub(crate) id: u64,
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) age: u32,
}

impl Person {
    /// Person `id`, as every engine stores it.
    pub(crate) fn of(id: u64) -> Person {
        Person {
            id,
            email: email(id),
            name: format!("name {id}"),
            age: age(id),
        }
    }
}

/// The email of person `id` (unique).
pub(crate) fn email(id: u64) -> String {
    format!("user{id:010}@example.org")
}

/// The age of person `id`.
pub(crate) fn age(id: u64) -> u32 {
    u32::try_from(id.wrapping_mul(7) % u64::from(AGES)).unwrap_or(0)
}

/// A visit of one row of a range.
pub(crate) type VisitPerson<'a> = &'a mut dyn FnMut(Person) -> Result<(), CliError>;

/// One open `person` table.
pub(crate) trait People {
    /// Inserts persons `ids` ([`Person::of`]) in one durable transaction.
    fn insert(&self, ids: &[u64]) -> Result<(), CliError>;
    /// The person whose email is `email`, through the email index.
    fn by_email(&self, email: &str) -> Result<Option<Person>, CliError>;
    /// Visits the persons whose age is in `lo..hi`, in age order, through
    /// the age index.
    fn by_age(&self, lo: u32, hi: u32, visit: VisitPerson<'_>) -> Result<(), CliError>;
}

/// The `person` table to open: the email plain or sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Plain,
    Sealed,
}

/// Lookups of `coll-lookup` for `n` persons: n/5, at least one.
pub(crate) fn lookups(n: u64) -> u64 {
    (n / 5).max(1)
}

/// `coll-insert`: every person into a fresh table.
pub(crate) fn insert(engine: &dyn Engine, table: Table, shape: Shape) -> Result<Measure, CliError> {
    let n = shape.records;
    let order = Scatter::new(n, 19);
    let mut elapsed = None;
    engine.people(true, table, &mut |people| {
        let start = Instant::now();
        let mut ids = Vec::with_capacity(BATCH as usize);
        for i in 0..n {
            ids.push(order.at(i));
            if ids.len() as u64 == BATCH || i + 1 == n {
                people.insert(&ids)?;
                ids.clear();
            }
        }
        elapsed = Some(start.elapsed());
        Ok(())
    })?;
    Ok(Measure::Throughput {
        ops: n,
        elapsed: elapsed.unwrap_or_default(),
    })
}

/// The error of a row that is not what was inserted.
fn wrong(what: String) -> CliError {
    CliError::CheckFailed(format!("bench: {what}"))
}

/// `coll-lookup`: persons by email, in scattered order.
pub(crate) fn lookup(engine: &dyn Engine, table: Table, shape: Shape) -> Result<Measure, CliError> {
    let n = shape.records;
    let count = lookups(n);
    let order = Scatter::new(n, 23);
    let mut elapsed = None;
    engine.people(false, table, &mut |people| {
        let start = Instant::now();
        for i in 0..count {
            let id = order.at(i % n);
            let want = Person::of(id);
            match people.by_email(&want.email)? {
                Some(got) if got == want => {}
                other => {
                    return Err(wrong(format!(
                        "the email of person {id} found {other:?}, not the person inserted"
                    )));
                }
            }
        }
        elapsed = Some(start.elapsed());
        Ok(())
    })?;
    Ok(Measure::Throughput {
        ops: count,
        elapsed: elapsed.unwrap_or_default(),
    })
}

/// How many of persons `0..n` have an age in `lo..hi`.
fn persons_aged(n: u64, lo: u32, hi: u32) -> u64 {
    // Ages repeat every AGES ids (7 and AGES are coprime).
    let full = n / u64::from(AGES);
    let rest = n % u64::from(AGES);
    let in_range = |a: u32| (lo..hi).contains(&a);
    full * u64::from((lo..hi).filter(|a| *a < AGES).count() as u32)
        + (0..rest).filter(|&id| in_range(age(id))).count() as u64
}

/// `coll-range`: [`RANGES`] ranges of two ages.
pub(crate) fn range(engine: &dyn Engine, table: Table, shape: Shape) -> Result<Measure, CliError> {
    let n = shape.records;
    let mut timed = None;
    engine.people(false, table, &mut |people| {
        let start = Instant::now();
        let mut rows = 0u64;
        for q in 0..RANGES {
            let lo = q * 13 % (AGES - 2);
            let hi = lo + 2;
            let mut seen = 0u64;
            let mut last_age = lo;
            people.by_age(lo, hi, &mut |got| {
                if got.age < last_age || got.age >= hi || got != Person::of(got.id) {
                    return Err(wrong(format!(
                        "a range over ages {lo}..{hi} returned {got:?} after age {last_age}"
                    )));
                }
                last_age = got.age;
                seen += 1;
                Ok(())
            })?;
            let want = persons_aged(n, lo, hi);
            if seen != want {
                return Err(wrong(format!(
                    "a range over ages {lo}..{hi} returned {seen} persons, {want} were inserted"
                )));
            }
            rows += seen;
        }
        timed = Some((rows, start.elapsed()));
        Ok(())
    })?;
    let (ops, elapsed) = timed.unwrap_or_default();
    Ok(Measure::Throughput { ops, elapsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_of_an_age_range_is_the_count_of_its_persons() {
        for n in [1, 7, 99, 100, 101, 1_234] {
            for (lo, hi) in [(0, 2), (5, 7), (97, 99), (98, 100), (0, 100)] {
                let direct = (0..n).filter(|&id| (lo..hi).contains(&age(id))).count() as u64;
                assert_eq!(persons_aged(n, lo, hi), direct, "{n} {lo}..{hi}");
            }
        }
    }
}
