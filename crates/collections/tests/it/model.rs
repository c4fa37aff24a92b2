//! Collections against a model: random inserts, upserts, updates,
//! deletes, unique violations, pairs of concurrent transactions (one of
//! which may conflict) and crashes on the simulated disk; after every step
//! the records and every index agree with the model, and `verify` is
//! clean.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

use sealkv::{Config, Db, SyncMode, Transaction};
use sealkv_collections::{Collection, Error};
use sealkv_fileio::SimVfs;

use crate::support::{User, key, norm, schema, user};

const TENANTS: [&str; 2] = ["acme", "globex"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    tenant: u8,
    name: u8,
    age: u8,
    email: u8,
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, Row),
    Upsert(u8, Row),
    Delete(u8),
    SetAge(u8, u8),
    SetEmail(u8, u8),
    /// Two transactions on the same snapshot; the first commits first.
    Pair(Box<Op>, Box<Op>),
    Crash(u64),
}

/// What an operation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// It wrote (insert, replaced or not, updated, deleted).
    Wrote(bool),
    /// It found nothing to update or delete.
    Missing,
    Duplicate,
    Unique(String),
}

impl Outcome {
    fn wrote(&self) -> bool {
        matches!(self, Outcome::Wrote(_))
    }
}

fn row() -> impl Strategy<Value = Row> {
    (0..2u8, 0..6u8, 0..4u8, 0..6u8).prop_map(|(tenant, name, age, email)| Row {
        tenant,
        name,
        age,
        email,
    })
}

/// A simple operation on a record with an id below `ids`.
fn simple(ids: u8) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..ids, row()).prop_map(|(id, r)| Op::Insert(id, r)),
        2 => (0..ids, row()).prop_map(|(id, r)| Op::Upsert(id, r)),
        2 => (0..ids).prop_map(Op::Delete),
        2 => (0..ids, 0..4u8).prop_map(|(id, a)| Op::SetAge(id, a)),
        2 => (0..ids, 0..6u8).prop_map(|(id, e)| Op::SetEmail(id, e)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => simple(10),
        // Few ids, so the two often touch the same record or index entry.
        4 => (simple(4), simple(4)).prop_map(|(a, b)| Op::Pair(Box::new(a), Box::new(b))),
        1 => any::<u64>().prop_map(Op::Crash),
    ]
}

fn email(e: u8) -> String {
    format!(" User{e}@Example.org")
}

fn to_user(id: u8, r: Row) -> User {
    user(
        u64::from(id),
        TENANTS[usize::from(r.tenant)],
        &format!("name{}", r.name),
        u32::from(r.age),
        &email(r.email),
    )
}

type Model = BTreeMap<u8, Row>;

/// The model's answer to `op`, applied to `m`.
fn model_apply(m: &mut Model, op: &Op) -> Outcome {
    // Unique checks in the schema's order: email (per tenant), then name.
    let clash = |m: &Model, id: u8, r: &Row| {
        let others = || m.iter().filter(move |(k, _)| **k != id).map(|(_, o)| o);
        if others().any(|o| o.tenant == r.tenant && o.email == r.email) {
            Some(Outcome::Unique("email".into()))
        } else if others().any(|o| o.name == r.name) {
            Some(Outcome::Unique("name".into()))
        } else {
            None
        }
    };
    match op {
        Op::Insert(id, r) | Op::Upsert(id, r) => {
            if matches!(op, Op::Insert(..)) && m.contains_key(id) {
                return Outcome::Duplicate;
            }
            if let Some(c) = clash(m, *id, r) {
                return c;
            }
            Outcome::Wrote(m.insert(*id, *r).is_some())
        }
        Op::Delete(id) => match m.remove(id) {
            Some(_) => Outcome::Wrote(true),
            None => Outcome::Missing,
        },
        Op::SetAge(id, _) | Op::SetEmail(id, _) => {
            let Some(mut r) = m.get(id).copied() else {
                return Outcome::Missing;
            };
            match op {
                Op::SetAge(_, a) => r.age = *a,
                Op::SetEmail(_, e) => r.email = *e,
                _ => unreachable!(),
            }
            if let Some(c) = clash(m, *id, &r) {
                return c;
            }
            m.insert(*id, r);
            Outcome::Wrote(true)
        }
        Op::Pair(..) | Op::Crash(_) => unreachable!("not a simple operation"),
    }
}

/// Runs a simple `op` in `tx`.
fn run(users: &Collection<User, u64>, tx: &mut Transaction, op: &Op) -> Outcome {
    let mut c = users.in_tx(tx);
    let result = match op {
        Op::Insert(id, r) => c.insert(&to_user(*id, *r)).map(|()| Outcome::Wrote(false)),
        Op::Upsert(id, r) => c.upsert(&to_user(*id, *r)).map(Outcome::Wrote),
        Op::Delete(id) => c.delete(&u64::from(*id)).map(|d| {
            if d {
                Outcome::Wrote(true)
            } else {
                Outcome::Missing
            }
        }),
        Op::SetAge(id, a) => c
            .update(&u64::from(*id), |u| u.age = u32::from(*a))
            .map(|u| u.map_or(Outcome::Missing, |_| Outcome::Wrote(true))),
        Op::SetEmail(id, e) => c
            .update(&u64::from(*id), |u| u.email.set(email(*e)))
            .map(|u| u.map_or(Outcome::Missing, |_| Outcome::Wrote(true))),
        Op::Pair(..) | Op::Crash(_) => unreachable!("not a simple operation"),
    };
    match result {
        Ok(o) => o,
        Err(Error::DuplicateKey { .. }) => Outcome::Duplicate,
        Err(Error::UniqueViolation { index, .. }) => Outcome::Unique(index),
        Err(e) => panic!("{op:?}: {e}"),
    }
}

/// Inserts answer `Wrote(false)` whatever the model says of replacing.
fn same(actual: &Outcome, model: &Outcome, op: &Op) -> bool {
    match (op, actual, model) {
        (Op::Insert(..), Outcome::Wrote(_), Outcome::Wrote(_)) => true,
        _ => actual == model,
    }
}

fn config(sim: &SimVfs) -> Config {
    Config::new("/db")
        .vfs(Arc::new(sim.clone()))
        .sync_mode(SyncMode::Always)
        .memtable_size(64 << 10)
        .encryption_key(key())
}

/// Every record, every index and `verify` agree with the model.
fn check(users: &Collection<User, u64>, m: &Model) -> Result<(), TestCaseError> {
    let stored: Vec<User> = users.iter().unwrap().map(Result::unwrap).collect();
    let expected: Vec<User> = m.iter().map(|(id, r)| to_user(*id, *r)).collect();
    prop_assert_eq!(&stored, &expected);
    prop_assert_eq!(users.count().unwrap(), m.len() as u64);
    let ids = |v: Vec<User>| v.into_iter().map(|u| u.id as u8).collect::<Vec<_>>();
    for name in 0..6u8 {
        let want: Vec<u8> = m
            .iter()
            .filter(|(_, r)| r.name == name)
            .map(|(id, _)| *id)
            .collect();
        prop_assert_eq!(
            ids(users.find("name", &format!("name{name}")).unwrap()),
            want
        );
    }
    for age in 0..4u8 {
        let want: Vec<u8> = m
            .iter()
            .filter(|(_, r)| r.age == age)
            .map(|(id, _)| *id)
            .collect();
        prop_assert_eq!(ids(users.find("age", &u32::from(age)).unwrap()), want);
    }
    let mut by_age: Vec<(u8, u8)> = m
        .iter()
        .filter(|(_, r)| r.age >= 2)
        .map(|(id, r)| (r.age, *id))
        .collect();
    by_age.sort();
    let want: Vec<u8> = by_age.into_iter().map(|(_, id)| id).collect();
    prop_assert_eq!(ids(users.range_by("age", 2u32..).unwrap()), want);
    for (t, tenant) in TENANTS.iter().enumerate() {
        for e in 0..6u8 {
            let want: Vec<u8> = m
                .iter()
                .filter(|(_, r)| usize::from(r.tenant) == t && r.email == e)
                .map(|(id, _)| *id)
                .collect();
            let found = users
                .find_in_tenant(*tenant, "email", &norm(&email(e)))
                .unwrap();
            prop_assert_eq!(ids(found), want);
        }
    }
    let report = users.verify().unwrap();
    prop_assert!(report.is_clean(), "{:?}", report);
    Ok(())
}

#[test]
fn collections_agree_with_a_model_through_conflicts_and_crashes() {
    let conflicts = Cell::new(0u32);
    let crashes = Cell::new(0u32);
    let violations = Cell::new(0u32);
    // A fixed seed: the counts asserted below are the same on every run.
    let mut runner = TestRunner::new_with_rng(
        RunnerConfig {
            cases: 48,
            failure_persistence: None,
            ..RunnerConfig::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            let sim = SimVfs::new();
            let mut db = Db::open_with_config(config(&sim)).unwrap();
            let mut users = Collection::open(&db, schema()).unwrap();
            let mut m = Model::new();
            for op in &ops {
                match op {
                    Op::Crash(seed) => {
                        // A killed process: nothing dropped, nothing synced.
                        std::mem::forget(users);
                        std::mem::forget(db);
                        sim.crash_torn(*seed);
                        crashes.set(crashes.get() + 1);
                        db = Db::open_with_config(config(&sim)).unwrap();
                        users = Collection::open(&db, schema()).unwrap();
                    }
                    Op::Pair(a, b) => {
                        let mut ta = db.begin_transaction().unwrap();
                        let mut tb = db.begin_transaction().unwrap();
                        let out_a = run(&users, &mut ta, a);
                        let out_b = run(&users, &mut tb, b);
                        ta.commit().unwrap();
                        let before = m.clone();
                        let want_a = model_apply(&mut m, a);
                        prop_assert!(
                            same(&out_a, &want_a, a),
                            "{:?}: {:?} vs {:?}",
                            a,
                            out_a,
                            want_a
                        );
                        match tb.commit() {
                            Ok(()) => {
                                // A transaction that wrote is serialized after
                                // the first; one that wrote nothing read its
                                // snapshot, before it.
                                let mut at = if out_b.wrote() { m.clone() } else { before };
                                let want_b = model_apply(&mut at, b);
                                prop_assert!(
                                    same(&out_b, &want_b, b),
                                    "{:?}: {:?} vs {:?}",
                                    b,
                                    out_b,
                                    want_b
                                );
                                if out_b.wrote() {
                                    m = at;
                                }
                            }
                            Err(sealkv::Error::Conflict) => {
                                prop_assert!(out_b.wrote(), "a read-only transaction conflicted");
                                conflicts.set(conflicts.get() + 1);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    op => {
                        let mut tx = db.begin_transaction().unwrap();
                        let out = run(&users, &mut tx, op);
                        tx.commit().unwrap();
                        let want = model_apply(&mut m, op);
                        if matches!(want, Outcome::Unique(_) | Outcome::Duplicate) {
                            violations.set(violations.get() + 1);
                        }
                        prop_assert!(same(&out, &want, op), "{:?}: {:?} vs {:?}", op, out, want);
                    }
                }
                check(&users, &m)?;
            }
            Ok(())
        })
        .unwrap();
    // The events the test is named after happened.
    assert!(conflicts.get() > 10, "{} conflicts", conflicts.get());
    assert!(crashes.get() > 10, "{} crashes", crashes.get());
    assert!(
        violations.get() > 50,
        "{} unique violations",
        violations.get()
    );
    println!(
        "{} conflicts, {} crashes, {} unique violations or duplicates",
        conflicts.get(),
        crashes.get(),
        violations.get()
    );
}
