//! The scratch keyspace: stream 0 creates it, fills it in one batch, and
//! later drops it, again and again under the same name, so keyspace
//! creation, drop and the purge of a dropped keyspace's keys (finished at
//! open when a kill cut it short) are under the kill.
//!
//! Each fill has a random generation `G` (printed by the child), which
//! names its keys `f/<G>/<i>`, so keys of an earlier keyspace of the same
//! name show as keys of another generation. From the child's `begin fill
//! G`, `end fill G`, `begin drop` and `end drop` lines the parent works
//! out what the keyspace may hold after the kill ([`allowed`]) and checks
//! it ([`check`]): absent once a drop was acknowledged; exactly fill `G`
//! once fill `G` was acknowledged; while a fill or a drop was in flight,
//! the state before it or after it, never a mix.
//!
//! In compaction mode the keyspace is cleared instead of dropped: `begin
//! clear` / `end clear` around a `delete_range` of all of it, which deletes
//! in bounded batches, each atomic, in key order. A clear cut short by the
//! kill may leave a tail of the fill (its keys from some key on, none
//! missing after it), never a hole.

use sealkv::{Db, Keyspace, WriteBatch};
use sealkv_fileio::SplitMix64;

use crate::workload::{Pairs, describe, differences, existing, scan};

/// The scratch keyspace's name.
pub(crate) const SCRATCH: &str = "scratch";

/// What the scratch keyspace holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Scratch {
    /// It does not exist.
    #[default]
    Absent,
    /// It exists and is empty (created; its fill not applied).
    Empty,
    /// It holds exactly the keys of fill `G`.
    Filled(u64),
    /// It holds the keys of fill `G` from some key on, at least one and
    /// not all (a clear cut short).
    Tail(u64),
}

/// What the child said it did to the scratch keyspace, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// `begin fill G`: creating it and writing fill `G`.
    BeginFill(u64),
    /// `end fill G`: fill `G` acknowledged.
    EndFill(u64),
    /// `begin drop`.
    BeginDrop,
    /// `end drop`: the drop acknowledged.
    EndDrop,
    /// `begin clear`: deleting every key of it with `delete_range`.
    BeginClear,
    /// `end clear`: the clear acknowledged.
    EndClear,
}

impl Event {
    /// The event a line of the child announces, if any.
    pub(crate) fn parse(line: &str) -> Option<Event> {
        if let Some(g) = line.strip_prefix("begin fill ") {
            return g.parse().ok().map(Event::BeginFill);
        }
        if let Some(g) = line.strip_prefix("end fill ") {
            return g.parse().ok().map(Event::EndFill);
        }
        match line {
            "begin drop" => Some(Event::BeginDrop),
            "end drop" => Some(Event::EndDrop),
            "begin clear" => Some(Event::BeginClear),
            "end clear" => Some(Event::EndClear),
            _ => None,
        }
    }
}

/// The keys and values of fill `g`: 1 to 1,600 keys (a drop of more than
/// 1,024 takes several purge batches), values of 16 to 79 bytes starting
/// with `g` and the key's number.
pub(crate) fn fill(g: u64) -> Pairs {
    let n = 1 + SplitMix64::mix(g) % 1600;
    (0..n)
        .map(|i| {
            let h = SplitMix64::mix(g ^ i.wrapping_mul(0x9E37_79B9));
            let mut v = Vec::with_capacity(80);
            v.extend_from_slice(&g.to_be_bytes());
            v.extend_from_slice(&i.to_be_bytes());
            v.resize(16 + (h % 64) as usize, (h >> 8) as u8);
            (format!("f/{g:016x}/{i:05}").into_bytes(), v)
        })
        .collect()
}

/// Deletes every key of the scratch keyspace with `delete_range` (in
/// bounded batches, in key order); the keyspace stays.
pub(crate) fn clear(db: &Db) -> Result<u64, String> {
    let ks = db
        .keyspace(SCRATCH)
        .map_err(|e| format!("opening keyspace {SCRATCH:?}: {e}"))?;
    ks.delete_range::<&[u8]>(..)
        .map_err(|e| format!("clearing keyspace {SCRATCH:?}: {e}"))
}

/// Creates the scratch keyspace and writes fill `g` into it in one batch;
/// a key already in the new keyspace (one of an earlier keyspace of the
/// same name) is an error.
pub(crate) fn create_and_fill(db: &Db, g: u64) -> Result<Keyspace, String> {
    let ks = db
        .keyspace(SCRATCH)
        .map_err(|e| format!("creating keyspace {SCRATCH:?}: {e}"))?;
    let old = ks
        .iter()
        .and_then(|mut it| it.next().transpose())
        .map_err(|e| format!("reading the new keyspace {SCRATCH:?}: {e}"))?;
    if let Some((key, _)) = old {
        return Err(format!(
            "the new keyspace {SCRATCH:?} holds {} before its fill {g}: a key of a dropped keyspace of the same name",
            describe(&key)
        ));
    }
    let mut batch = WriteBatch::new();
    for (key, value) in fill(g) {
        batch.put_in(&ks, key, value);
    }
    db.write(&batch)
        .map_err(|e| format!("writing fill {g} of keyspace {SCRATCH:?}: {e}"))?;
    Ok(ks)
}

/// What the scratch keyspace may hold after a child that found it as
/// `before` did `events` and was killed.
pub(crate) fn allowed(before: Scratch, events: &[Event]) -> Vec<Scratch> {
    let mut out = vec![before];
    let add = |out: &mut Vec<Scratch>, s: Scratch| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for e in events {
        match *e {
            Event::BeginFill(g) => {
                add(&mut out, Scratch::Empty);
                add(&mut out, Scratch::Filled(g));
            }
            Event::EndFill(g) => out = vec![Scratch::Filled(g)],
            Event::BeginDrop => add(&mut out, Scratch::Absent),
            Event::EndDrop => out = vec![Scratch::Absent],
            Event::BeginClear => {
                let tails: Vec<Scratch> = out
                    .iter()
                    .filter_map(|s| match *s {
                        Scratch::Filled(g) | Scratch::Tail(g) => Some(Scratch::Tail(g)),
                        _ => None,
                    })
                    .collect();
                for t in tails {
                    add(&mut out, t);
                }
                add(&mut out, Scratch::Empty);
            }
            Event::EndClear => out = vec![Scratch::Empty],
        }
    }
    out
}

/// Why being found `absent` (or present) where only `allowed` may be is
/// a loss or a resurrection, if it is one of those.
fn why(allowed: &[Scratch], absent: bool) -> &'static str {
    if !absent && allowed == [Scratch::Absent] {
        ": its drop was acknowledged, and it reappeared"
    } else if absent && !allowed.contains(&Scratch::Absent) {
        ": its acknowledged fill was lost"
    } else {
        ""
    }
}

/// What a check of the scratch keyspace found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// What it holds (meaningless when `finding` is set).
    pub(crate) state: Scratch,
    /// What is wrong, if anything.
    pub(crate) finding: Option<String>,
}

/// Checks that the scratch keyspace is in one of the `allowed` states.
pub(crate) fn check(db: &Db, allowed: &[Scratch]) -> Found {
    let finding = |what: String| Found {
        state: Scratch::Absent,
        finding: Some(format!("keyspace {SCRATCH:?}: {what}")),
    };
    let ks = match existing(db, SCRATCH) {
        Ok(ks) => ks,
        Err(e) => return finding(format!("opening it failed: {e}")),
    };
    let state = match &ks {
        None => Scratch::Absent,
        Some(ks) => {
            let contents = match scan(db, Some(ks)) {
                Ok(c) => c,
                Err(e) => return finding(format!("scanning it failed: {e}")),
            };
            if contents.is_empty() {
                Scratch::Empty
            } else {
                let fills = allowed.iter().filter_map(|s| match s {
                    Scratch::Filled(g) => Some(*g),
                    _ => None,
                });
                let tails = allowed.iter().filter_map(|s| match s {
                    Scratch::Tail(g) => Some(*g),
                    _ => None,
                });
                let mut closest = None;
                let mut matched = None;
                for g in fills {
                    let diffs = differences(&contents, &fill(g));
                    if diffs.is_empty() {
                        matched = Some(Scratch::Filled(g));
                        break;
                    }
                    closest = Some((g, diffs));
                }
                for g in tails.filter(|_| matched.is_none()) {
                    let all = fill(g);
                    let from = all.len().saturating_sub(contents.len());
                    let diffs = differences(&contents, &all[from..]);
                    if diffs.is_empty() && from > 0 {
                        matched = Some(Scratch::Tail(g));
                        break;
                    }
                    closest = Some((g, diffs));
                }
                match (matched, closest) {
                    (Some(s), _) => s,
                    (None, Some((g, diffs))) => {
                        let shown: Vec<_> = diffs.iter().take(4).cloned().collect();
                        return finding(format!(
                            "{} keys, not those of fill {g} ({} differences): {}",
                            contents.len(),
                            diffs.len(),
                            shown.join("; ")
                        ));
                    }
                    (None, None) => {
                        return finding(format!(
                            "present with {} keys (the first {}), where it may only be {allowed:?}{}",
                            contents.len(),
                            describe(&contents[0].0),
                            why(allowed, false)
                        ));
                    }
                }
            }
        }
    };
    if allowed.contains(&state) {
        return Found {
            state,
            finding: None,
        };
    }
    let what = match state {
        Scratch::Absent => "absent".to_string(),
        Scratch::Empty => "present and empty".to_string(),
        Scratch::Filled(g) => format!("present with fill {g}"),
        Scratch::Tail(g) => format!("present with a tail of fill {g}"),
    };
    finding(format!(
        "{what}, where it may only be {allowed:?}{}",
        why(allowed, state == Scratch::Absent)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_to_events() {
        assert_eq!(Event::parse("begin fill 7"), Some(Event::BeginFill(7)));
        assert_eq!(Event::parse("end fill 7"), Some(Event::EndFill(7)));
        assert_eq!(Event::parse("begin drop"), Some(Event::BeginDrop));
        assert_eq!(Event::parse("end drop"), Some(Event::EndDrop));
        assert_eq!(Event::parse("begin clear"), Some(Event::BeginClear));
        assert_eq!(Event::parse("end clear"), Some(Event::EndClear));
        assert_eq!(Event::parse("begin flush"), None);
        assert_eq!(Event::parse("begin fill x"), None);
    }

    #[test]
    fn the_allowed_states_follow_the_lines() {
        use Event::*;
        use Scratch::*;
        assert_eq!(allowed(Absent, &[]), [Absent]);
        assert_eq!(allowed(Absent, &[BeginFill(3)]), [Absent, Empty, Filled(3)]);
        assert_eq!(allowed(Absent, &[BeginFill(3), EndFill(3)]), [Filled(3)]);
        assert_eq!(
            allowed(Absent, &[BeginFill(3), EndFill(3), BeginDrop]),
            [Filled(3), Absent]
        );
        assert_eq!(
            allowed(
                Filled(2),
                &[
                    BeginDrop,
                    EndDrop,
                    BeginFill(3),
                    EndFill(3),
                    BeginDrop,
                    EndDrop
                ]
            ),
            [Absent]
        );
        assert_eq!(allowed(Empty, &[BeginDrop]), [Empty, Absent]);
        assert_eq!(
            allowed(Filled(4), &[BeginClear]),
            [Filled(4), Tail(4), Empty]
        );
        assert_eq!(allowed(Tail(4), &[BeginClear]), [Tail(4), Empty]);
        assert_eq!(
            allowed(Filled(4), &[BeginClear, EndClear, BeginFill(5)]),
            [Empty, Filled(5)]
        );
    }

    /// A clear cut short leaves a tail of the fill; a hole in it, or a
    /// tail where no clear was in flight, is a finding.
    #[test]
    fn a_tail_checks_clean_only_while_a_clear_was_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let g = (0..50).find(|g| fill(*g).len() > 10).unwrap();
        let ks = create_and_fill(&db, g).unwrap();
        let keys = fill(g);
        ks.delete_range(keys[0].0.clone()..keys[3].0.clone())
            .unwrap();
        let in_flight = allowed(Scratch::Filled(g), &[Event::BeginClear]);
        let found = check(&db, &in_flight);
        assert_eq!((found.state, found.finding), (Scratch::Tail(g), None));
        let what = check(&db, &[Scratch::Filled(g)]).finding.unwrap();
        assert!(what.contains("missing"), "{what}");
        ks.delete(&keys[6].0).unwrap();
        assert!(check(&db, &in_flight).finding.is_some());
        assert_eq!(clear(&db).unwrap() as usize, keys.len() - 4);
        let found = check(&db, &in_flight);
        assert_eq!((found.state, found.finding), (Scratch::Empty, None));
    }

    #[test]
    fn fills_are_sorted_and_sized() {
        for g in [0, 1, 99, u64::MAX] {
            let f = fill(g);
            assert!((1..=1600).contains(&f.len()));
            assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert!(
            (0..50).any(|g| fill(g).len() > 1024),
            "some fills take several purge batches"
        );
    }

    #[test]
    fn what_the_lines_allow_checks_clean() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        assert_eq!(check(&db, &[Scratch::Absent]).state, Scratch::Absent);
        db.keyspace(SCRATCH).unwrap();
        let found = check(&db, &allowed(Scratch::Absent, &[Event::BeginFill(5)]));
        assert_eq!((found.state, found.finding), (Scratch::Empty, None));
        db.drop_keyspace(SCRATCH).unwrap();
        create_and_fill(&db, 5).unwrap();
        let found = check(&db, &allowed(Scratch::Absent, &[Event::BeginFill(5)]));
        assert_eq!((found.state, found.finding), (Scratch::Filled(5), None));
        db.drop_keyspace(SCRATCH).unwrap();
        let found = check(&db, &[Scratch::Filled(5), Scratch::Absent]);
        assert_eq!((found.state, found.finding), (Scratch::Absent, None));
    }

    /// A drop acknowledged, then the keyspace found again (as a lost drop
    /// record would leave it): a finding.
    #[test]
    fn a_dropped_keyspace_that_reappears_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        create_and_fill(&db, 11).unwrap();
        let events = [
            Event::BeginFill(11),
            Event::EndFill(11),
            Event::BeginDrop,
            Event::EndDrop,
        ];
        let found = check(&db, &allowed(Scratch::Absent, &events));
        let what = found.finding.unwrap();
        assert!(what.contains("reappeared"), "{what}");
        // Present but empty after an acknowledged drop: the same.
        db.drop_keyspace(SCRATCH).unwrap();
        db.keyspace(SCRATCH).unwrap();
        let what = check(&db, &[Scratch::Absent]).finding.unwrap();
        assert!(
            what.contains("present and empty") && what.contains("reappeared"),
            "{what}"
        );
    }

    #[test]
    fn a_lost_or_partial_fill_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let what = check(&db, &[Scratch::Filled(4)]).finding.unwrap();
        assert!(what.contains("fill was lost"), "{what}");
        let ks = create_and_fill(&db, 4).unwrap();
        let first = fill(4)[0].0.clone();
        ks.delete(&first).unwrap();
        let what = check(&db, &allowed(Scratch::Absent, &[Event::BeginFill(4)]))
            .finding
            .unwrap();
        assert!(
            what.contains("not those of fill 4") && what.contains("missing"),
            "{what}"
        );
    }

    /// A keyspace made again under a dropped one's name must not show the
    /// old keys: in the child, before its fill, and after the reopen.
    #[test]
    fn a_reused_name_showing_old_keys_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        create_and_fill(&db, 1).unwrap();
        db.drop_keyspace(SCRATCH).unwrap();
        let ks = create_and_fill(&db, 2).unwrap();
        // An old key where the new keyspace is.
        let (k, v) = fill(1)[0].clone();
        ks.put(&k, &v).unwrap();
        let what = check(&db, &[Scratch::Filled(2)]).finding.unwrap();
        assert!(what.contains("should not exist"), "{what}");
        db.drop_keyspace(SCRATCH).unwrap();
        // The child refuses to fill a new keyspace that is not empty.
        db.keyspace(SCRATCH).unwrap().put(&k, &v).unwrap();
        let err = create_and_fill(&db, 3).unwrap_err();
        assert!(err.contains("before its fill 3"), "{err}");
    }
}
