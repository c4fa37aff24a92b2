//! The transaction workloads: contended counters and money transfers, from
//! [`THREADS`] threads at once, each transaction a durable serializable
//! read-modify-write ([`Store::transaction`]).
//!
//! - `txn-increment`: [`COUNTERS`] counters (8-byte big-endian numbers in
//!   [`Table::Counters`]); each transaction reads one counter, chosen at
//!   random, and writes it back one higher. At the end each counter must
//!   equal the increments the threads committed to it.
//! - `txn-transfer`: [`ACCOUNTS`] accounts of [`BALANCE`] each in
//!   [`Table::Accounts`]; each transaction moves 1-100 from one random
//!   account to another if the first holds enough. At the end the total
//!   must be unchanged.
//!
//! Setup (the counters or accounts written afresh) and the final check are
//! untimed transactions of their own.

use std::time::Instant;

use sealkv::fileio::SplitMix64;

use super::engine::{Engine, Open, Store, Table, Txn};
use super::records::key;
use super::workload::{Measure, Shape};
use crate::exit::CliError;

/// Threads running transactions at once.
pub(crate) const THREADS: u64 = 2;
/// Counters of `txn-increment` (few, so the threads contend).
pub(crate) const COUNTERS: u64 = 4;
/// Accounts of `txn-transfer`.
pub(crate) const ACCOUNTS: u64 = 64;
/// Every account's balance at the start.
pub(crate) const BALANCE: u64 = 1_000;

/// Transactions per thread for `n` records: one per thousand records,
/// between 20 and 1,000 (each is an fsync).
pub(crate) fn per_thread(n: u64) -> u64 {
    (n / 1000).clamp(20, 1000)
}

/// Reads the 8-byte number at `key` of `table`.
fn read_number(tx: &mut dyn Txn, table: Table, i: u64) -> Result<u64, CliError> {
    let v = tx.get(table, &key(i))?;
    v.as_deref()
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| {
            CliError::CheckFailed(format!(
                "bench: {} {i} is not an 8-byte number",
                table.name()
            ))
        })
}

/// A number read that cannot have been written (it overflows).
fn overflow() -> CliError {
    CliError::CheckFailed("bench: a number read back overflows: not what was written".into())
}

fn write_number(tx: &mut dyn Txn, table: Table, i: u64, n: u64) -> Result<(), CliError> {
    tx.put(table, &key(i), &n.to_be_bytes())
}

/// Writes `count` numbers of `value` into `table`, in one transaction.
fn set_all(store: &dyn Store, table: Table, count: u64, value: u64) -> Result<(), CliError> {
    store.transaction(&mut |tx| {
        for i in 0..count {
            write_number(tx, table, i, value)?;
        }
        Ok(())
    })
}

/// Reads `count` numbers of `table`, in one transaction.
fn read_all(store: &dyn Store, table: Table, count: u64) -> Result<Vec<u64>, CliError> {
    let mut out = Vec::new();
    store.transaction(&mut |tx| {
        out.clear();
        for i in 0..count {
            out.push(read_number(tx, table, i)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// One transaction of a thread: the store, the thread's generator and its
/// tally.
type OneTxn<T> = dyn Fn(&dyn Store, &mut SplitMix64, &mut T) -> Result<(), CliError> + Sync;

/// Runs `per_thread` transactions on each of [`THREADS`] threads; `one`
/// runs one and returns what the thread tallies. Returns the tallies and
/// the elapsed time.
fn on_threads<T: Send>(
    store: &dyn Store,
    per_thread: u64,
    seed: u64,
    one: &OneTxn<T>,
    tally: impl Fn() -> T + Sync,
) -> Result<(Vec<T>, std::time::Duration), CliError> {
    let start = Instant::now();
    let results: Vec<Result<T, CliError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let tally = &tally;
                s.spawn(move || {
                    let mut rng = SplitMix64::new(seed ^ SplitMix64::mix(t));
                    let mut mine = tally();
                    for _ in 0..per_thread {
                        one(store, &mut rng, &mut mine)?;
                    }
                    Ok(mine)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(CliError::CheckFailed(
                        "bench: a transaction thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let tallies = results.into_iter().collect::<Result<Vec<T>, CliError>>()?;
    Ok((tallies, elapsed))
}

/// `txn-increment` on `engine`.
pub(crate) fn increment(engine: &dyn Engine, shape: Shape) -> Result<Measure, CliError> {
    let per_thread = per_thread(shape.records);
    let mut elapsed = None;
    engine.session(Open::Transactional, &mut |store| {
        set_all(store, Table::Counters, COUNTERS, 0)?;
        let (tallies, took) = on_threads(
            store,
            per_thread,
            0x1_4C,
            &|store, rng, mine: &mut Vec<u64>| {
                let c = rng.below(COUNTERS);
                store.transaction(&mut |tx| {
                    let n = read_number(tx, Table::Counters, c)?;
                    write_number(
                        tx,
                        Table::Counters,
                        c,
                        n.checked_add(1).ok_or_else(overflow)?,
                    )
                })?;
                if let Some(t) = usize::try_from(c).ok().and_then(|c| mine.get_mut(c)) {
                    *t += 1;
                }
                Ok(())
            },
            || vec![0u64; COUNTERS as usize],
        )?;
        let counters = read_all(store, Table::Counters, COUNTERS)?;
        for (c, got) in counters.iter().enumerate() {
            let want: u64 = tallies.iter().filter_map(|t| t.get(c)).sum();
            if *got != want {
                return Err(CliError::CheckFailed(format!(
                    "bench: counter {c} holds {got} after {want} committed increments"
                )));
            }
        }
        elapsed = Some(took);
        Ok(())
    })?;
    Ok(Measure::Throughput {
        ops: per_thread * THREADS,
        elapsed: elapsed.unwrap_or_default(),
    })
}

/// `txn-transfer` on `engine`.
pub(crate) fn transfer(engine: &dyn Engine, shape: Shape) -> Result<Measure, CliError> {
    let per_thread = per_thread(shape.records);
    let mut elapsed = None;
    engine.session(Open::Transactional, &mut |store| {
        set_all(store, Table::Accounts, ACCOUNTS, BALANCE)?;
        let (_, took) = on_threads(
            store,
            per_thread,
            0x7_4A,
            &|store, rng, (): &mut ()| {
                let from = rng.below(ACCOUNTS);
                let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
                let amount = 1 + rng.below(100);
                store.transaction(&mut |tx| {
                    let a = read_number(tx, Table::Accounts, from)?;
                    let b = read_number(tx, Table::Accounts, to)?;
                    if a < amount {
                        return Ok(());
                    }
                    write_number(tx, Table::Accounts, from, a - amount)?;
                    write_number(
                        tx,
                        Table::Accounts,
                        to,
                        b.checked_add(amount).ok_or_else(overflow)?,
                    )
                })
            },
            || (),
        )?;
        let balances = read_all(store, Table::Accounts, ACCOUNTS)?;
        let total: u128 = balances.iter().map(|&b| u128::from(b)).sum();
        let want = u128::from(ACCOUNTS * BALANCE);
        if total != want {
            return Err(CliError::CheckFailed(format!(
                "bench: the accounts hold {total} in total, {want} before the transfers"
            )));
        }
        elapsed = Some(took);
        Ok(())
    })?;
    Ok(Measure::Throughput {
        ops: per_thread * THREADS,
        elapsed: elapsed.unwrap_or_default(),
    })
}
