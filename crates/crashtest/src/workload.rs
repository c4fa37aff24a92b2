//! The batches the child writes and the state they must leave.
//!
//! Batch `b` (from 1) puts one to four keys `d/<b>/<k>` whose values start
//! with `b` and `k` (16 to 615 bytes, one in ten 3,000 to 5,999 bytes so
//! overflow pages are used), deletes the keys of batch `b - WINDOW`, and
//! sets `last` to `b`. After batches `1..=m` the database must hold exactly
//! the keys of batches `m - WINDOW + 1 ..= m` and `last = m`: any hole, any
//! extra key and any half-applied batch shows as a difference from that
//! state, found by one full scan.

use sealkv::{Db, WriteBatch};

use crate::rng::{Rng, mix};

/// How many batches stay live: each batch deletes the one this far behind.
pub(crate) const WINDOW: u64 = 256;

/// The key holding the id of the last batch applied.
pub(crate) const LAST: &[u8] = b"last";

/// How many keys batch `b` puts (1 to 4).
pub(crate) fn key_count(b: u64) -> u64 {
    1 + mix(b ^ 0xA5A5) % 4
}

pub(crate) fn data_key(b: u64, k: u64) -> Vec<u8> {
    format!("d/{b:010}/{k}").into_bytes()
}

/// The value of key `k` of batch `b`: `b` and `k` big-endian, then
/// pseudo-random filler.
pub(crate) fn value(b: u64, k: u64) -> Vec<u8> {
    let h = mix(b.wrapping_mul(31).wrapping_add(k));
    let len = if h.is_multiple_of(10) {
        3000 + (h >> 8) % 3000
    } else {
        16 + (h >> 8) % 600
    };
    let mut v = Vec::with_capacity(len as usize);
    v.extend_from_slice(&b.to_be_bytes());
    v.extend_from_slice(&k.to_be_bytes());
    let mut rng = Rng::new(h);
    while v.len() < len as usize {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(len as usize);
    v
}

/// Batch `b` (`b >= 1`).
pub(crate) fn batch(b: u64) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for k in 0..key_count(b) {
        batch.put(data_key(b, k), value(b, k));
    }
    if b > WINDOW {
        let old = b - WINDOW;
        for k in 0..key_count(old) {
            batch.delete(data_key(old, k));
        }
    }
    batch.put(LAST, b.to_be_bytes());
    batch
}

/// The exact contents after batches `1..=m`, sorted by key.
pub(crate) fn expected(m: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    if m == 0 {
        return out;
    }
    let first = m.saturating_sub(WINDOW - 1).max(1);
    for b in first..=m {
        for k in 0..key_count(b) {
            out.push((data_key(b, k), value(b, k)));
        }
    }
    out.push((LAST.to_vec(), m.to_be_bytes().to_vec()));
    out
}

/// What a check of a reopened database found.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The last batch applied, per `last` (0 for an empty database).
    pub(crate) last: u64,
    /// Every problem, in words.
    pub(crate) findings: Vec<String>,
    /// Findings that mean an acknowledged batch was lost.
    pub(crate) lost: u64,
    /// Findings that mean a batch is partly applied or the state is wrong.
    pub(crate) partial: u64,
}

fn describe(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Checks the database against the batches acknowledged (`1..=acked`) and
/// attempted (`1..=attempted`): `last` must lie between them and the
/// contents must be exactly those of batches `1..=last`.
pub(crate) fn check(db: &Db, acked: u64, attempted: u64) -> Checked {
    let mut out = Checked::default();
    let last = match db.get(LAST) {
        Ok(None) => 0,
        Ok(Some(v)) => match <[u8; 8]>::try_from(v.as_slice()) {
            Ok(bytes) => u64::from_be_bytes(bytes),
            Err(_) => {
                out.partial += 1;
                out.findings
                    .push(format!("`last` holds {} bytes, not 8", v.len()));
                return out;
            }
        },
        Err(e) => {
            out.findings.push(format!("reading `last` failed: {e}"));
            return out;
        }
    };
    out.last = last;
    if last < acked {
        out.lost += acked - last;
        out.findings.push(format!(
            "acknowledged batches {}..={acked} lost: the database ends at batch {last}",
            last + 1
        ));
    }
    if last > attempted.max(acked) {
        out.partial += 1;
        out.findings.push(format!(
            "batch {last} appeared, but only batches up to {attempted} were ever attempted"
        ));
    }
    let actual = match db.range::<&[u8]>(..) {
        Ok(iter) => iter.collect::<Result<Vec<_>, _>>(),
        Err(e) => Err(e),
    };
    let actual = match actual {
        Ok(a) => a,
        Err(e) => {
            out.findings
                .push(format!("scanning the database failed: {e}"));
            return out;
        }
    };
    let want = expected(last);
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
    if !diffs.is_empty() {
        out.partial += 1;
        let shown: Vec<_> = diffs.iter().take(6).cloned().collect();
        out.findings.push(format!(
            "the contents are not those of batches 1..={last} ({} differences): {}",
            diffs.len(),
            shown.join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(db: &Db, range: std::ops::RangeInclusive<u64>) {
        for b in range {
            db.write(&batch(b)).unwrap();
        }
    }

    #[test]
    fn a_whole_prefix_of_batches_checks_clean() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        assert!(check(&db, 0, 0).findings.is_empty());
        apply(&db, 1..=WINDOW + 40);
        let c = check(&db, WINDOW + 39, WINDOW + 40);
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        assert_eq!(c.last, WINDOW + 40);
        assert_eq!(
            db.range::<&[u8]>(..).unwrap().count(),
            expected(WINDOW + 40).len()
        );
    }

    #[test]
    fn a_lost_acknowledged_batch_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        apply(&db, 1..=5);
        let c = check(&db, 7, 8);
        assert_eq!(c.lost, 2);
        assert_eq!(c.last, 5);
    }

    #[test]
    fn half_a_batch_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        apply(&db, 1..=5);
        // The data keys of batch 6 without its `last`.
        db.put(data_key(6, 0), value(6, 0)).unwrap();
        let c = check(&db, 5, 6);
        assert_eq!((c.lost, c.partial), (0, 1), "{:?}", c.findings);
        // `last` of batch 7 without one of its keys.
        db.delete(data_key(6, 0)).unwrap();
        apply(&db, 6..=7);
        db.delete(data_key(7, 0)).unwrap();
        let c = check(&db, 6, 7);
        assert_eq!(c.partial, 1, "{:?}", c.findings);
        assert!(c.findings[0].contains("missing"));
        // A wrong value.
        db.put(data_key(7, 0), b"wrong").unwrap();
        assert!(check(&db, 6, 7).findings[0].contains("wrong value"));
    }

    #[test]
    fn a_batch_never_attempted_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        apply(&db, 1..=5);
        let c = check(&db, 3, 4);
        assert_eq!((c.lost, c.partial), (0, 1));
    }
}
