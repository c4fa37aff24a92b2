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
//! shows as a difference from that state, found by one full scan.

use sealkv::{Db, WriteBatch};
use sealkv_fileio::SplitMix64;

/// How many batches stay live: each batch deletes the one this far behind.
pub(crate) const WINDOW: u64 = 256;

/// Writer threads in the child, each with its own sequence of batches.
pub(crate) const STREAMS: usize = 3;

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

/// Batch `b` (`b >= 1`) of stream `t`.
pub(crate) fn batch(t: usize, b: u64) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for k in 0..key_count(t, b) {
        batch.put(data_key(t, b, k), value(t, b, k));
    }
    if b > WINDOW {
        let old = b - WINDOW;
        for k in 0..key_count(t, old) {
            batch.delete(data_key(t, old, k));
        }
    }
    batch.put(last_key(t), b.to_be_bytes());
    batch
}

/// The exact contents after batches `1..=lasts[t]` of each stream `t`,
/// sorted by key.
pub(crate) fn expected(lasts: &[u64]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for (t, &m) in lasts.iter().enumerate() {
        if m == 0 {
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

fn describe(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Checks the database against the batches acknowledged (`1..=acked[t]`)
/// and attempted (`1..=attempted[t]`) of each stream: `last/<t>` must lie
/// between them and the contents must be exactly those of batches
/// `1..=last/<t>`.
pub(crate) fn check(db: &Db, acked: &[u64], attempted: &[u64]) -> Checked {
    let mut out = Checked::default();
    for t in 0..STREAMS {
        let (acked, attempted) = (acked[t], attempted[t].max(acked[t]));
        let last = match db.get(last_key(t)) {
            Ok(None) => 0,
            Ok(Some(v)) => match <[u8; 8]>::try_from(v.as_slice()) {
                Ok(bytes) => u64::from_be_bytes(bytes),
                Err(_) => {
                    out.partial += 1;
                    out.findings
                        .push(format!("`last/{t}` holds {} bytes, not 8", v.len()));
                    return out;
                }
            },
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
    let want = expected(&out.lasts);
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
            "the contents are not those of batches 1..={:?} ({} differences): {}",
            out.lasts,
            diffs.len(),
            shown.join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(db: &Db, t: usize, range: std::ops::RangeInclusive<u64>) {
        for b in range {
            db.write(&batch(t, b)).unwrap();
        }
    }

    #[test]
    fn whole_prefixes_of_batches_check_clean() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        assert!(check(&db, &[0; 3], &[0; 3]).findings.is_empty());
        apply(&db, 0, 1..=WINDOW + 40);
        apply(&db, 2, 1..=7);
        let c = check(&db, &[WINDOW + 39, 0, 7], &[WINDOW + 40, 0, 8]);
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        assert_eq!(c.lasts, vec![WINDOW + 40, 0, 7]);
        assert_eq!(
            db.range::<&[u8]>(..).unwrap().count(),
            expected(&[WINDOW + 40, 0, 7]).len()
        );
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
}
