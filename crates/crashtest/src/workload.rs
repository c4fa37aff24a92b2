//! The batches the child writes and the state they must leave.
//!
//! `STREAMS` writer threads each write their own sequence of batches, so
//! group commit is under the kill too. Batch `b` (from 1) of stream `t`
//! puts one to four keys `d/<t>/<b>/<k>` whose values start with `t`, `b`
//! and `k` (24 to 623 bytes, one in ten 3,000 to 5,999 bytes so overflow
//! pages are used), deletes the keys of its batch `b - WINDOW`, and sets
//! `last/<t>` to `b`. After batches `1..=m_t` of each stream the database
//! must hold exactly the keys of batches `m_t - WINDOW + 1 ..= m_t` and
//! `last/<t> = m_t`: any hole, any extra key and any half-applied batch
//! shows as a difference from that state, found by one full scan of each
//! keyspace.
//!
//! Stream 0 writes blind batches ([`Db::write`]) into the default
//! keyspace. Streams 1 and 2 commit theirs as transactions
//! ([`Db::transaction`]), stream 1 into the named keyspace
//! [`STREAM_KEYSPACE`], stream 2 into the default one: each transaction
//! reads its stream's `last/<t>` (which must be `b - 1`) and the keys of
//! its previous batch (which must be whole), writes the batch, and
//! increments the shared [`COUNTER`] key, so the two streams conflict and
//! retry, and a transaction spans two keyspaces. After transactions
//! `1..=m_1` and `1..=m_2` the counter must be exactly `m_1 + m_2`: a lost
//! update or a half-applied transaction shows there.

use sealkv::{Db, Error, Keyspace, Transaction, WriteBatch};
use sealkv_fileio::SplitMix64;

/// How many batches stay live: each batch deletes the one this far behind.
pub(crate) const WINDOW: u64 = 256;

/// Writer threads in the child, each with its own sequence of batches.
pub(crate) const STREAMS: usize = 3;

/// The named keyspace stream 1 writes in (streams 0 and 2 write in the
/// default keyspace).
pub(crate) const STREAM_KEYSPACE: &str = "s1";

/// The key of the default keyspace every transaction increments by one.
pub(crate) const COUNTER: &[u8] = b"counter";

/// The keyspace stream `t` writes in: a name, or `None` for the default.
pub(crate) fn keyspace_of(t: usize) -> Option<&'static str> {
    (t == 1).then_some(STREAM_KEYSPACE)
}

/// Whether stream `t` commits its batches as transactions (streams 1 and
/// 2) rather than as blind writes (stream 0).
pub(crate) fn transactional(t: usize) -> bool {
    t != 0
}

/// The key holding the id of the last batch of stream `t` applied.
pub(crate) fn last_key(t: usize) -> Vec<u8> {
    format!("last/{t}").into_bytes()
}

/// How many keys batch `b` of stream `t` puts (1 to 4).
pub(crate) fn key_count(t: usize, b: u64) -> u64 {
    1 + SplitMix64::mix(b ^ 0xA5A5 ^ ((t as u64) << 56)) % 4
}

pub(crate) fn data_key(t: usize, b: u64, k: u64) -> Vec<u8> {
    format!("d/{t}/{b:010}/{k}").into_bytes()
}

/// The value of key `k` of batch `b` of stream `t`: `t`, `b` and `k`
/// big-endian, then pseudo-random filler.
pub(crate) fn value(t: usize, b: u64, k: u64) -> Vec<u8> {
    let h = SplitMix64::mix(b.wrapping_mul(31).wrapping_add(k) ^ ((t as u64) << 56));
    let len = if h.is_multiple_of(10) {
        3000 + (h >> 8) % 3000
    } else {
        16 + (h >> 8) % 600
    };
    let mut v = Vec::with_capacity(len as usize + 8);
    v.extend_from_slice(&(t as u64).to_be_bytes());
    v.extend_from_slice(&b.to_be_bytes());
    v.extend_from_slice(&k.to_be_bytes());
    let mut rng = SplitMix64::new(h);
    while v.len() < len as usize {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(len as usize + 8);
    v
}

/// What batch `b` (`b >= 1`) of stream `t` writes, in order: its puts,
/// the deletions of batch `b - WINDOW`, and `last/<t>` (a `None` value is
/// a deletion).
pub(crate) fn changes(t: usize, b: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for k in 0..key_count(t, b) {
        out.push((data_key(t, b, k), Some(value(t, b, k))));
    }
    if b > WINDOW {
        let old = b - WINDOW;
        for k in 0..key_count(t, old) {
            out.push((data_key(t, old, k), None));
        }
    }
    out.push((last_key(t), Some(b.to_be_bytes().to_vec())));
    out
}

/// Batch `b` (`b >= 1`) of stream `t`, as a blind write to the default
/// keyspace.
pub(crate) fn batch(t: usize, b: u64) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for (key, value) in changes(t, b) {
        match value {
            Some(v) => batch.put(key, v),
            None => batch.delete(key),
        };
    }
    batch
}

/// Why a transaction of the workload did not commit.
#[derive(Debug)]
pub(crate) enum TxnFailure {
    /// The engine refused it (a conflict after every retry, or an error).
    Engine(Error),
    /// It read something a committed prefix of its stream cannot hold.
    Finding(String),
}

impl From<Error> for TxnFailure {
    fn from(e: Error) -> Self {
        TxnFailure::Engine(e)
    }
}

impl std::fmt::Display for TxnFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxnFailure::Engine(e) => write!(f, "{e}"),
            TxnFailure::Finding(what) => f.write_str(what),
        }
    }
}

/// A big-endian `u64` value (absent: 0), or what is wrong with it.
pub(crate) fn read_u64(what: &str, v: Option<Vec<u8>>) -> Result<u64, String> {
    match v {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(v.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| format!("`{what}` holds {} bytes, not 8", v.len())),
    }
}

/// The body of transaction `b` of stream `t` (keyspace `ks`, `None` for
/// the default one): checks that its snapshot holds batches `1..b` of the
/// stream whole (`last/<t>` is `b - 1` and batch `b - 1`'s keys are all
/// there), writes batch `b` and increments [`COUNTER`].
pub(crate) fn transact(
    tx: &mut Transaction,
    ks: Option<&Keyspace>,
    t: usize,
    b: u64,
) -> Result<(), TxnFailure> {
    let finding =
        |what: String| TxnFailure::Finding(format!("stream {t}, transaction {b}: {what}"));
    let last = match ks {
        Some(ks) => tx.get_in(ks, last_key(t))?,
        None => tx.get(last_key(t))?,
    };
    let last = read_u64(&format!("last/{t}"), last).map_err(finding)?;
    if last != b - 1 {
        return Err(finding(format!("`last/{t}` reads {last}, not {}", b - 1)));
    }
    if b > 1 {
        let prefix = format!("d/{t}/{:010}/", b - 1);
        let seen = match ks {
            Some(ks) => tx.prefix_in(ks, &prefix)?,
            None => tx.prefix(&prefix)?,
        }
        .collect::<Result<Vec<_>, _>>()?;
        let want: Vec<_> = (0..key_count(t, b - 1))
            .map(|k| (data_key(t, b - 1, k), value(t, b - 1, k)))
            .collect();
        if seen != want {
            return Err(finding(format!(
                "batch {} reads {} keys, not its {} (or wrong values)",
                b - 1,
                seen.len(),
                want.len()
            )));
        }
    }
    for (key, value) in changes(t, b) {
        match (ks, value) {
            (Some(ks), Some(v)) => tx.put_in(ks, key, v)?,
            (Some(ks), None) => tx.delete_in(ks, key)?,
            (None, Some(v)) => tx.put(key, v)?,
            (None, None) => tx.delete(key)?,
        }
    }
    let counter = read_u64("counter", tx.get(COUNTER)?).map_err(finding)?;
    tx.put(COUNTER, (counter + 1).to_be_bytes())?;
    Ok(())
}

/// Commits transaction `b` of stream `t` in `ks` through
/// [`Db::transaction`], starting over when it gives up on conflicts (it
/// wrote nothing then); returns how many times its body ran again after
/// a conflict.
pub(crate) fn commit_txn(
    db: &Db,
    ks: Option<&Keyspace>,
    t: usize,
    b: u64,
) -> Result<u64, TxnFailure> {
    let mut runs = 0u64;
    loop {
        match db.transaction(|tx| {
            runs += 1;
            transact(tx, ks, t, b)
        }) {
            Ok(()) => return Ok(runs - 1),
            Err(TxnFailure::Engine(Error::Conflict)) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sorted key-value pairs.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The exact contents of keyspace `space` (`None`: the default one,
/// without [`COUNTER`]) after batches `1..=lasts[t]` of each stream `t`,
/// sorted by key.
pub(crate) fn expected_in(space: Option<&str>, lasts: &[u64]) -> Pairs {
    let mut out = Vec::new();
    for (t, &m) in lasts.iter().enumerate() {
        if m == 0 || keyspace_of(t) != space {
            continue;
        }
        let first = m.saturating_sub(WINDOW - 1).max(1);
        for b in first..=m {
            for k in 0..key_count(t, b) {
                out.push((data_key(t, b, k), value(t, b, k)));
            }
        }
        out.push((last_key(t), m.to_be_bytes().to_vec()));
    }
    out.sort();
    out
}

/// What a check of a reopened database found.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The last batch applied of each stream, per `last/<t>` (0 for none).
    pub(crate) lasts: Vec<u64>,
    /// Every problem, in words.
    pub(crate) findings: Vec<String>,
    /// Acknowledged batches lost.
    pub(crate) lost: u64,
    /// Findings that mean a batch is partly applied or the state is wrong.
    pub(crate) partial: u64,
}

pub(crate) fn describe(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// The named keyspace `name` if it exists (without creating it).
pub(crate) fn existing(db: &Db, name: &str) -> Result<Option<Keyspace>, Error> {
    if db.keyspaces()?.iter().any(|n| n == name) {
        db.keyspace(name).map(Some)
    } else {
        Ok(None)
    }
}

/// Every key of `ks` (the default keyspace for `None`).
pub(crate) fn scan(db: &Db, ks: Option<&Keyspace>) -> Result<Pairs, Error> {
    match ks {
        Some(ks) => ks.iter()?.collect(),
        None => db.range::<&[u8]>(..)?.collect(),
    }
}

/// The differences between `actual` and `want` (both sorted), in words.
pub(crate) fn differences(
    actual: &[(Vec<u8>, Vec<u8>)],
    want: &[(Vec<u8>, Vec<u8>)],
) -> Vec<String> {
    let (mut i, mut j) = (0, 0);
    let mut diffs = Vec::new();
    while i < actual.len() || j < want.len() {
        match (actual.get(i), want.get(j)) {
            (Some((ak, av)), Some((wk, wv))) if ak == wk => {
                if av != wv {
                    diffs.push(format!("{} holds a wrong value", describe(ak)));
                }
                i += 1;
                j += 1;
            }
            (Some((ak, _)), Some((wk, _))) if ak < wk => {
                diffs.push(format!("{} should not exist", describe(ak)));
                i += 1;
            }
            (Some((ak, _)), None) => {
                diffs.push(format!("{} should not exist", describe(ak)));
                i += 1;
            }
            (_, Some((wk, _))) => {
                diffs.push(format!("{} is missing", describe(wk)));
                j += 1;
            }
            (None, None) => break,
        }
    }
    diffs
}

/// Checks the database against the batches acknowledged (`1..=acked[t]`)
/// and attempted (`1..=attempted[t]`) of each stream: `last/<t>` must lie
/// between them, each keyspace's contents must be exactly those of
/// batches `1..=last/<t>`, and [`COUNTER`] must equal `last/1 + last/2`.
pub(crate) fn check(db: &Db, acked: &[u64], attempted: &[u64]) -> Checked {
    let mut out = Checked::default();
    let named = match existing(db, STREAM_KEYSPACE) {
        Ok(ks) => ks,
        Err(e) => {
            out.findings
                .push(format!("opening keyspace {STREAM_KEYSPACE:?} failed: {e}"));
            return out;
        }
    };
    for t in 0..STREAMS {
        let (acked, attempted) = (acked[t], attempted[t].max(acked[t]));
        let read = match (keyspace_of(t), &named) {
            (None, _) => db.get(last_key(t)),
            (Some(_), Some(ks)) => ks.get(last_key(t)),
            // Never created: nothing of the stream was committed.
            (Some(_), None) => Ok(None),
        };
        let last = match read.map(|v| read_u64(&format!("last/{t}"), v)) {
            Ok(Ok(last)) => last,
            Ok(Err(what)) => {
                out.partial += 1;
                out.findings.push(what);
                return out;
            }
            Err(e) => {
                out.findings.push(format!("reading `last/{t}` failed: {e}"));
                return out;
            }
        };
        if last < acked {
            out.lost += acked - last;
            out.findings.push(format!(
                "stream {t}: acknowledged batches {}..={acked} lost: the database ends at batch {last}",
                last + 1
            ));
        }
        if last > attempted {
            out.partial += 1;
            out.findings.push(format!(
                "stream {t}: batch {last} appeared, but only batches up to {attempted} were ever attempted"
            ));
        }
        out.lasts.push(last);
    }
    match db.get(COUNTER).map(|v| read_u64("counter", v)) {
        Ok(Ok(counter)) => {
            let want = out.lasts[1] + out.lasts[2];
            if counter != want {
                out.partial += 1;
                out.findings.push(format!(
                    "`counter` is {counter}, not last/1 + last/2 = {} + {} = {want}: an increment was lost or repeated, or a transaction is half applied",
                    out.lasts[1], out.lasts[2]
                ));
            }
        }
        Ok(Err(what)) => {
            out.partial += 1;
            out.findings.push(what);
        }
        Err(e) => out.findings.push(format!("reading `counter` failed: {e}")),
    }
    for (space, ks) in [(None, None), (Some(STREAM_KEYSPACE), named.as_ref())] {
        let label = space.map_or("the default keyspace".to_string(), |n| {
            format!("keyspace {n:?}")
        });
        let scanned = match (space, ks) {
            // Never created: empty.
            (Some(_), None) => Ok(Vec::new()),
            _ => scan(db, ks),
        };
        let mut actual = match scanned {
            Ok(a) => a,
            Err(e) => {
                out.findings.push(format!("scanning {label} failed: {e}"));
                return out;
            }
        };
        if space.is_none() {
            actual.retain(|(k, _)| k != COUNTER);
        }
        let diffs = differences(&actual, &expected_in(space, &out.lasts));
        if !diffs.is_empty() {
            out.partial += 1;
            let shown: Vec<_> = diffs.iter().take(6).cloned().collect();
            out.findings.push(format!(
                "{label}: the contents are not those of batches 1..={:?} ({} differences): {}",
                out.lasts,
                diffs.len(),
                shown.join("; ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits batches `range` of stream `t` as the child does.
    fn apply(db: &Db, t: usize, range: std::ops::RangeInclusive<u64>) {
        let ks = keyspace_of(t).map(|name| db.keyspace(name).unwrap());
        for b in range {
            if transactional(t) {
                commit_txn(db, ks.as_ref(), t, b).unwrap();
            } else {
                db.write(&batch(t, b)).unwrap();
            }
        }
    }

    #[test]
    fn whole_prefixes_of_batches_check_clean() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        assert!(check(&db, &[0; 3], &[0; 3]).findings.is_empty());
        apply(&db, 0, 1..=WINDOW + 40);
        apply(&db, 1, 1..=WINDOW + 3);
        apply(&db, 2, 1..=7);
        let c = check(
            &db,
            &[WINDOW + 39, WINDOW + 3, 7],
            &[WINDOW + 40, WINDOW + 3, 8],
        );
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        assert_eq!(c.lasts, vec![WINDOW + 40, WINDOW + 3, 7]);
        let lasts = [WINDOW + 40, WINDOW + 3, 7];
        // The default keyspace: streams 0 and 2, and the counter.
        assert_eq!(
            db.range::<&[u8]>(..).unwrap().count(),
            expected_in(None, &lasts).len() + 1
        );
        assert_eq!(
            db.get(COUNTER).unwrap(),
            Some((WINDOW + 10).to_be_bytes().to_vec())
        );
        // Stream 1 in its own keyspace, its old batches deleted.
        let ks = db.keyspace(STREAM_KEYSPACE).unwrap();
        assert_eq!(
            scan(&db, Some(&ks)).unwrap(),
            expected_in(Some(STREAM_KEYSPACE), &lasts)
        );
        assert_eq!(ks.get(data_key(1, 3, 0)).unwrap(), None);
        assert_eq!(db.get(last_key(1)).unwrap(), None);
    }

    #[test]
    fn a_lost_acknowledged_batch_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        apply(&db, 1, 1..=5);
        let c = check(&db, &[0, 7, 0], &[0, 8, 0]);
        assert_eq!(c.lost, 2);
        assert_eq!(c.lasts, vec![0, 5, 0]);
    }

    #[test]
    fn half_a_batch_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        apply(&db, 0, 1..=5);
        // The data keys of batch 6 without its `last`.
        db.put(data_key(0, 6, 0), value(0, 6, 0)).unwrap();
        let c = check(&db, &[5, 0, 0], &[6, 0, 0]);
        assert_eq!((c.lost, c.partial), (0, 1), "{:?}", c.findings);
        // `last` of batch 7 without one of its keys.
        db.delete(data_key(0, 6, 0)).unwrap();
        apply(&db, 0, 6..=7);
        db.delete(data_key(0, 7, 0)).unwrap();
        let c = check(&db, &[6, 0, 0], &[7, 0, 0]);
        assert_eq!(c.partial, 1, "{:?}", c.findings);
        assert!(c.findings[0].contains("missing"));
        // A wrong value.
        db.put(data_key(0, 7, 0), b"wrong").unwrap();
        assert!(check(&db, &[6, 0, 0], &[7, 0, 0]).findings[0].contains("wrong value"));
        // Another stream's key where it should not be.
        db.put(data_key(0, 7, 0), value(0, 7, 0)).unwrap();
        db.put(data_key(2, 1, 0), value(2, 1, 0)).unwrap();
        assert!(check(&db, &[7, 0, 0], &[7, 0, 1]).findings[0].contains("should not exist"));
    }

    #[test]
    fn a_batch_never_attempted_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        apply(&db, 0, 1..=5);
        let c = check(&db, &[3, 0, 0], &[4, 0, 0]);
        assert_eq!((c.lost, c.partial), (0, 1));
    }

    #[test]
    fn a_lost_increment_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        apply(&db, 1, 1..=3);
        apply(&db, 2, 1..=4);
        assert!(check(&db, &[0, 3, 4], &[0, 3, 4]).findings.is_empty());
        // Two transactions read 6 and both wrote 7.
        db.put(COUNTER, 6u64.to_be_bytes()).unwrap();
        let c = check(&db, &[0, 3, 4], &[0, 3, 4]);
        assert_eq!((c.lost, c.partial), (0, 1), "{:?}", c.findings);
        assert!(
            c.findings[0].contains("`counter` is 6, not"),
            "{:?}",
            c.findings
        );
    }

    #[test]
    fn half_a_transaction_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        apply(&db, 1, 1..=3);
        apply(&db, 2, 1..=2);
        // Stream 2's transaction 3 without its increment.
        db.write(&batch(2, 3)).unwrap();
        let c = check(&db, &[0, 3, 2], &[0, 3, 3]);
        assert_eq!((c.lost, c.partial), (0, 1), "{:?}", c.findings);
        assert!(
            c.findings[0].contains("`counter` is 5, not"),
            "{:?}",
            c.findings
        );
        // Its increment without its batch: stream 1's transaction 4 with
        // only the counter applied.
        db.put(COUNTER, 7u64.to_be_bytes()).unwrap();
        let c = check(&db, &[0, 3, 3], &[0, 4, 3]);
        assert_eq!(c.partial, 1, "{:?}", c.findings);
        assert!(
            c.findings[0].contains("`counter` is 7, not"),
            "{:?}",
            c.findings
        );
        // Its data keys without its `last/1`, in the named keyspace.
        db.put(COUNTER, 6u64.to_be_bytes()).unwrap();
        let ks = db.keyspace(STREAM_KEYSPACE).unwrap();
        ks.put(data_key(1, 4, 0), value(1, 4, 0)).unwrap();
        let c = check(&db, &[0, 3, 3], &[0, 4, 3]);
        assert_eq!(c.partial, 1, "{:?}", c.findings);
        assert!(
            c.findings[0].contains("keyspace \"s1\"") && c.findings[0].contains("should not exist"),
            "{:?}",
            c.findings
        );
        // Stream 1's keys in the default keyspace instead of its own.
        ks.delete(data_key(1, 4, 0)).unwrap();
        db.put(data_key(1, 3, 0), value(1, 3, 0)).unwrap();
        let c = check(&db, &[0, 3, 3], &[0, 3, 3]);
        assert!(
            c.findings[0].contains("the default keyspace")
                && c.findings[0].contains("should not exist"),
            "{:?}",
            c.findings
        );
    }

    /// A transaction whose snapshot lacks its stream's previous batch, or
    /// holds it partly, refuses to commit and says so.
    #[test]
    fn a_transaction_that_reads_a_hole_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        apply(&db, 2, 1..=2);
        match commit_txn(&db, None, 2, 4) {
            Err(TxnFailure::Finding(what)) => assert!(what.contains("reads 2, not 3"), "{what}"),
            other => panic!("{other:?}"),
        }
        db.delete(data_key(2, 2, 0)).unwrap();
        match commit_txn(&db, None, 2, 3) {
            Err(TxnFailure::Finding(what)) => assert!(what.contains("batch 2 reads"), "{what}"),
            other => panic!("{other:?}"),
        }
        // Nothing of either was written.
        assert_eq!(db.get(COUNTER).unwrap(), Some(2u64.to_be_bytes().to_vec()));
    }

    /// The two transactional streams conflict through the counter: a
    /// transaction of stream 1 whose snapshot predates a commit of stream
    /// 2 is refused, and the retry commits.
    #[test]
    fn the_transactional_streams_conflict_on_the_counter() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let ks = db.keyspace(STREAM_KEYSPACE).unwrap();
        let mut tx = db.begin_transaction().unwrap();
        transact(&mut tx, Some(&ks), 1, 1).unwrap();
        assert_eq!(commit_txn(&db, None, 2, 1).unwrap(), 0);
        assert!(matches!(tx.commit(), Err(Error::Conflict)));
        assert_eq!(commit_txn(&db, Some(&ks), 1, 1).unwrap(), 0);
        assert!(check(&db, &[0, 1, 1], &[0, 1, 1]).findings.is_empty());
    }
}
