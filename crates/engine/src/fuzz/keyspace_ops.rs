//! The operations mode bit 3 adds to a program: named keyspaces, drops,
//! transactions, batches across keyspaces and compare-and-swap.

use super::crashvfs::CrashPlan;
use super::model::{Model, NAMES, handles};
use super::{collect, key, must, value};
use crate::{Db, Error, WriteBatch};

/// What an operation means for the model.
#[derive(Debug, Default)]
pub(super) struct Effect {
    /// The model if the operation takes effect whole.
    pub(super) after: Option<Model>,
    /// States an operation of several commits may leave when a crash cuts
    /// it short, besides the state before it and `after`.
    pub(super) between: Vec<Model>,
    /// The state a crash cannot go back past: what the operation's first
    /// commits left, once acknowledged.
    pub(super) acked: Option<Model>,
}

/// Runs operation `op` (14 to 19) with arguments from `arg`.
pub(super) fn run(
    op: u8,
    db: &Db,
    model: &Model,
    arg: &mut dyn FnMut() -> u8,
    plan: &CrashPlan,
) -> (Result<(), Error>, Effect) {
    let mut effect = Effect::default();
    let outcome = match op {
        14 => put_in_new_or_old(db, model, arg, &mut effect),
        15 => drop_keyspace(db, model, arg, plan, &mut effect),
        16 => read_modify_write(db, model, arg, &mut effect),
        17 => scan_then_end(db, model, arg, &mut effect),
        18 => batch_across(db, model, arg, &mut effect),
        _ => compare_and_swap(db, model, arg, &mut effect),
    };
    (outcome, effect)
}

/// A put into a named keyspace, made on demand: its creation is a commit
/// of its own, kept once acknowledged.
fn put_in_new_or_old(
    db: &Db,
    model: &Model,
    arg: &mut dyn FnMut() -> u8,
    effect: &mut Effect,
) -> Result<(), Error> {
    let name = NAMES[usize::from(arg()) % NAMES.len()];
    let (k, v) = (key(arg()), value(arg(), arg()));
    let mut created = model.clone();
    created.space_mut(Some(name));
    let mut next = created.clone();
    next.space_mut(Some(name)).insert(k.clone(), v.clone());
    effect.after = Some(next);
    let new = !model.named.contains_key(name);
    if new {
        effect.between.push(created.clone());
    }
    let ks = db.keyspace(name)?;
    if new {
        effect.acked = Some(created);
    }
    ks.put(&k, &v)
}

/// A drop: the keyspace goes, then its keys are purged in batches (a
/// crash in between finishes the purge at open); a handle taken before
/// admits nothing after.
fn drop_keyspace(
    db: &Db,
    model: &Model,
    arg: &mut dyn FnMut() -> u8,
    plan: &CrashPlan,
    effect: &mut Effect,
) -> Result<(), Error> {
    let name = NAMES[usize::from(arg()) % NAMES.len()];
    let existed = model.named.contains_key(name);
    let handle = existed.then(|| must(db.keyspace(name), "keyspace"));
    let mut next = model.clone();
    next.named.remove(name);
    effect.after = Some(next);
    let dropped = db.drop_keyspace(name)?;
    assert_eq!(
        dropped, existed,
        "drop_keyspace({name:?}) says whether it existed"
    );
    // (After a power cut the dead instance refuses everything, for that
    // reason first.)
    if let Some(ks) = handle.filter(|_| !plan.fired()) {
        assert!(
            matches!(ks.put(b"k", b"v"), Err(Error::KeyspaceDropped { .. })),
            "a dropped keyspace admits no write"
        );
        assert!(matches!(ks.get(b"k"), Err(Error::KeyspaceDropped { .. })));
    }
    Ok(())
}

/// A read-modify-write transaction over up to four keys of the default and
/// the named keyspaces: each write depends on what it read, and every read
/// must see the snapshot with the transaction's own writes over it.
fn read_modify_write(
    db: &Db,
    model: &Model,
    arg: &mut dyn FnMut() -> u8,
    effect: &mut Effect,
) -> Result<(), Error> {
    let steps: Vec<_> = (0..arg() % 4 + 1)
        .map(|_| (model.pick(arg()), key(arg()), arg()))
        .collect();
    let handles = handles(db, model);
    let mut next = model.clone();
    let committed = db.transaction(|tx| {
        next = model.clone();
        for (space, k, a) in &steps {
            let ks = space.map(|n| &handles[n]);
            let read = match ks {
                Some(ks) => tx.get_in(ks, k)?,
                None => tx.get(k)?,
            };
            assert_eq!(
                read,
                next.get(*space, k),
                "a transaction reads its snapshot and its own writes"
            );
            if a % 4 == 0 {
                next.space_mut(*space).remove(k);
                match ks {
                    Some(ks) => tx.delete_in(ks, k)?,
                    None => tx.delete(k)?,
                }
            } else {
                // The value read, cut short, and one byte more.
                let mut v: Vec<u8> = read.unwrap_or_default();
                v.truncate(15);
                v.push(*a);
                next.space_mut(*space).insert(k.clone(), v.clone());
                match ks {
                    Some(ks) => tx.put_in(ks, k, &v)?,
                    None => tx.put(k, &v)?,
                }
            }
        }
        Ok::<_, Error>(())
    });
    effect.after = Some(next);
    committed
}

/// A transaction that reads a key and scans a range of one keyspace,
/// writes what it saw, then commits, rolls back, or meets a blind write to
/// the key it read (and must be refused, writing nothing).
fn scan_then_end(
    db: &Db,
    model: &Model,
    arg: &mut dyn FnMut() -> u8,
    effect: &mut Effect,
) -> Result<(), Error> {
    let space = model.pick(arg());
    let (a, b) = (key(arg()), key(arg()));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let (target, ending) = (key(arg()), arg() % 3);
    let handle = space.map(|n| must(db.keyspace(n), "keyspace"));
    let mut tx = must(db.begin_transaction(), "begin_transaction");
    let read = match &handle {
        Some(ks) => tx.get_in(ks, &target),
        None => tx.get(&target),
    };
    assert_eq!(
        must(read, "get in a transaction"),
        model.get(space, &target)
    );
    let scanned = match &handle {
        Some(ks) => tx.range_in(ks, lo.clone()..hi.clone()),
        None => tx.range(lo.clone()..hi.clone()),
    };
    let scanned = collect(must(scanned, "range in a transaction"));
    let held = match space {
        Some(n) => &model.named[n],
        None => &model.default,
    };
    let want: Vec<_> = held
        .range(lo..hi)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(scanned, want, "a transaction scans its snapshot");
    let seen = vec![scanned.len() as u8; scanned.len() + 1];
    let put = match &handle {
        Some(ks) => tx.put_in(ks, &target, &seen),
        None => tx.put(&target, &seen),
    };
    must(put, "put in a transaction");
    let mut next = model.clone();
    match ending {
        0 => {
            next.space_mut(space).insert(target, seen);
            effect.after = Some(next);
            tx.commit()
        }
        1 => {
            tx.rollback();
            Ok(())
        }
        _ => {
            next.space_mut(space)
                .insert(target.clone(), b"blind".to_vec());
            effect.after = Some(next);
            match &handle {
                Some(ks) => ks.put(&target, b"blind")?,
                None => db.put(&target, b"blind")?,
            }
            match tx.commit() {
                Err(Error::Conflict) => Ok(()),
                Ok(()) => panic!("a transaction whose read was overwritten committed"),
                Err(e) => Err(e),
            }
        }
    }
}

/// One batch across the default and the named keyspaces.
fn batch_across(
    db: &Db,
    model: &Model,
    arg: &mut dyn FnMut() -> u8,
    effect: &mut Effect,
) -> Result<(), Error> {
    let handles = handles(db, model);
    let mut batch = WriteBatch::new();
    let mut next = model.clone();
    for _ in 0..arg() % 6 + 1 {
        let space = model.pick(arg());
        let (k, a) = (key(arg()), arg());
        let target = next.space_mut(space);
        if a % 3 == 0 {
            target.remove(&k);
            match space {
                Some(n) => batch.delete_in(&handles[n], &k),
                None => batch.delete(&k),
            };
        } else {
            let v = value(a, arg());
            target.insert(k.clone(), v.clone());
            match space {
                Some(n) => batch.put_in(&handles[n], &k, &v),
                None => batch.put(&k, &v),
            };
        }
    }
    effect.after = Some(next);
    db.write(&batch)
}

/// Compare-and-swap, expecting the value held or another.
fn compare_and_swap(
    db: &Db,
    model: &Model,
    arg: &mut dyn FnMut() -> u8,
    effect: &mut Effect,
) -> Result<(), Error> {
    let space = model.pick(arg());
    let (k, a) = (key(arg()), arg());
    let current = model.get(space, &k);
    let matches = a % 2 == 0;
    // No operation writes this value (puts write one byte repeated,
    // transactions at most 16 bytes).
    let expected = if matches {
        current.clone()
    } else {
        Some(b"a value no operation writes".to_vec())
    };
    let new = (a % 4 != 0).then(|| value(a, arg()));
    if matches {
        let mut next = model.clone();
        match &new {
            Some(v) => next.space_mut(space).insert(k.clone(), v.clone()),
            None => next.space_mut(space).remove(&k),
        };
        effect.after = Some(next);
    }
    let swapped = match space {
        Some(n) => must(db.keyspace(n), "keyspace").compare_and_swap(
            &k,
            expected.as_deref(),
            new.as_deref(),
        ),
        None => db.compare_and_swap(&k, expected.as_deref(), new.as_deref()),
    }?;
    match swapped {
        Ok(()) => assert!(
            matches,
            "compare-and-swap against a value not held succeeded"
        ),
        Err(e) => {
            assert!(!matches, "compare-and-swap against the value held failed");
            assert_eq!(e.current, current);
        }
    }
    Ok(())
}
