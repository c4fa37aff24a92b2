//! Key hygiene: find a secret in any of the forms it could leak in, and
//! capture every `tracing` event and span of a process as text.
//!
//! - [`SecretScanner`]: each key is looked for raw, as lowercase and
//!   uppercase hex, as standard and URL-safe base64 (padded or not), and
//!   every 8-byte window of it raw and in hex; a passphrase as its text,
//!   its hex, and every 8-character window of it.
//! - [`capture_logs`]: installs, once per process, a global `tracing`
//!   subscriber that enables every level (TRACE included) and writes every
//!   event and span with all their fields into a buffer the test reads.
//!
//! ```
//! use sealkv_testkit::secrets::SecretScanner;
//!
//! let key = [0x5au8, 0x01, 0xfe, 0x33, 0x90, 0x12, 0x7c, 0xd4, 0x0b, 0x66];
//! let mut scanner = SecretScanner::new();
//! scanner.add_key("k", &key);
//! assert!(scanner.scan(b"nothing here").is_empty());
//! // Eight bytes of the key, in uppercase hex, inside a log line.
//! assert!(!scanner.scan(b"key=5A01FE3390127CD4 ...").is_empty());
//! assert!(scanner.scan(b"key=5A01FE33").is_empty());
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use base64ct::{Base64, Base64Unpadded, Base64Url, Base64UrlUnpadded, Encoding};
use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

use crate::WINDOW;

/// One form of one secret to look for.
#[derive(Clone)]
struct Needle {
    secret: String,
    form: String,
    bytes: Vec<u8>,
}

/// Looks for secrets in text or bytes, in every form they could leak in.
/// Its `Debug` shows only the names and forms, never a needle.
#[derive(Clone, Default)]
pub struct SecretScanner {
    needles: Vec<Needle>,
}

impl fmt::Debug for SecretScanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretScanner({} needles)", self.needles.len())
    }
}

fn base64<E: Encoding>(bytes: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; bytes.len().div_ceil(3) * 4 + 4];
    E::encode(bytes, &mut buf)
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_default()
}

impl SecretScanner {
    /// An empty scanner.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, secret: &str, form: impl Into<String>, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.needles.push(Needle {
                secret: secret.to_string(),
                form: form.into(),
                bytes,
            });
        }
    }

    /// Looks for the key `bytes` (named `name` in findings).
    pub fn add_key(&mut self, name: &str, bytes: &[u8]) {
        self.push(name, "raw bytes", bytes.to_vec());
        self.push(name, "lowercase hex", hex::encode(bytes).into_bytes());
        self.push(name, "uppercase hex", hex::encode_upper(bytes).into_bytes());
        // The unpadded encodings are prefixes of the padded ones: looking
        // for them finds both.
        self.push(name, "standard base64", base64::<Base64Unpadded>(bytes));
        self.push(name, "URL-safe base64", base64::<Base64UrlUnpadded>(bytes));
        self.push(name, "standard base64 (padded)", base64::<Base64>(bytes));
        self.push(name, "URL-safe base64 (padded)", base64::<Base64Url>(bytes));
        for (at, w) in bytes.windows(WINDOW).enumerate() {
            self.push(name, format!("raw bytes {at}..{}", at + WINDOW), w.to_vec());
            self.push(
                name,
                format!("lowercase hex of bytes {at}..{}", at + WINDOW),
                hex::encode(w).into_bytes(),
            );
            self.push(
                name,
                format!("uppercase hex of bytes {at}..{}", at + WINDOW),
                hex::encode_upper(w).into_bytes(),
            );
        }
    }

    /// Looks for the secret text `text` (a passphrase).
    pub fn add_text(&mut self, name: &str, text: &str) {
        self.push(name, "text", text.as_bytes().to_vec());
        self.push(name, "lowercase hex", hex::encode(text).into_bytes());
        let chars: Vec<char> = text.chars().collect();
        for (at, w) in chars.windows(WINDOW).enumerate() {
            self.push(
                name,
                format!("characters {at}..{}", at + WINDOW),
                w.iter().collect::<String>().into_bytes(),
            );
        }
    }

    /// How many needles (forms of secrets) are looked for.
    pub fn len(&self) -> usize {
        self.needles.len()
    }

    /// Whether no secret was added.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Every secret form found in `haystack`, as "name: form at offset N"
    /// (never the secret itself), in the order the forms were added.
    ///
    /// One pass over the haystack per distinct needle length, each window
    /// looked up in a hash map: thousands of keys scan as fast as one.
    pub fn scan(&self, haystack: &[u8]) -> Vec<String> {
        let mut by_len: BTreeMap<usize, HashMap<&[u8], Vec<usize>>> = BTreeMap::new();
        for (i, n) in self.needles.iter().enumerate() {
            by_len
                .entry(n.bytes.len())
                .or_default()
                .entry(n.bytes.as_slice())
                .or_default()
                .push(i);
        }
        let mut first: Vec<Option<usize>> = vec![None; self.needles.len()];
        for (len, needles) in &by_len {
            for (at, w) in haystack.windows(*len).enumerate() {
                if let Some(ids) = needles.get(w) {
                    for &i in ids {
                        first[i].get_or_insert(at);
                    }
                }
            }
        }
        self.needles
            .iter()
            .zip(first)
            .filter_map(|(n, at)| at.map(|at| format!("{}: {} at offset {at}", n.secret, n.form)))
            .collect()
    }
}

/// The text captured from every `tracing` event and span of the process
/// since [`capture_logs`] first ran (see [`CapturedLogs::take`]).
#[derive(Debug)]
pub struct CapturedLogs {
    buf: Arc<Mutex<Vec<u8>>>,
    lines: AtomicU64,
}

impl CapturedLogs {
    /// The captured bytes so far, leaving them in the buffer.
    pub fn snapshot(&self) -> Vec<u8> {
        self.buf.lock().clone()
    }

    /// The captured bytes so far, emptying the buffer.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.buf.lock())
    }

    /// How many events and spans (and span records) were captured since
    /// the start.
    pub fn count(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }
}

/// A `tracing` subscriber that writes every event and span — all levels,
/// all fields — as a line into the buffer.
struct Capture {
    logs: &'static CapturedLogs,
    next_id: AtomicU64,
}

/// Writes every field as ` name=value`: `str` values as they are, byte
/// values raw and in Debug form, everything else in its Debug form (which
/// for a `%value` field is its Display).
struct Fields<'a>(&'a mut Vec<u8>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, " {}={value:?}", field.name());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .extend_from_slice(format!(" {}={value}", field.name()).as_bytes());
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.0
            .extend_from_slice(format!(" {}=", field.name()).as_bytes());
        self.0.extend_from_slice(value);
        self.0.extend_from_slice(format!(" {value:?}").as_bytes());
    }
}

impl Capture {
    fn line(&self, head: String, fill: impl FnOnce(&mut Fields<'_>)) {
        let mut line = head.into_bytes();
        fill(&mut Fields(&mut line));
        line.push(b'\n');
        self.logs.buf.lock().extend_from_slice(&line);
        self.logs.lines.fetch_add(1, Ordering::Relaxed);
    }
}

impl Subscriber for Capture {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let m = span.metadata();
        self.line(
            format!("span {} {} {}:", m.level(), m.target(), m.name()),
            |f| span.record(f),
        );
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.line(format!("span {} record:", span.into_u64()), |f| {
            values.record(f)
        });
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let m = event.metadata();
        self.line(format!("{} {}:", m.level(), m.target()), |f| {
            event.record(f)
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

static LOGS: OnceLock<&'static CapturedLogs> = OnceLock::new();

/// Installs (once per process) the capturing subscriber as the global
/// default, at TRACE level, and returns its buffer. Events of every thread
/// (the engine's flusher included) land in it.
///
/// # Panics
///
/// If another global subscriber was installed first (a test helper).
pub fn capture_logs() -> &'static CapturedLogs {
    LOGS.get_or_init(|| {
        let logs: &'static CapturedLogs = Box::leak(Box::new(CapturedLogs {
            buf: Arc::new(Mutex::new(Vec::new())),
            lines: AtomicU64::new(0),
        }));
        tracing::subscriber::set_global_default(Capture {
            logs,
            next_id: AtomicU64::new(0),
        })
        .expect("no other global tracing subscriber");
        logs
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Vec<u8> {
        // Not a constant pattern: every window differs.
        (0u8..32)
            .map(|i| i.wrapping_mul(73).wrapping_add(19))
            .collect()
    }

    fn scanner() -> SecretScanner {
        let mut s = SecretScanner::new();
        s.add_key("master", &key());
        s.add_text("passphrase", "correct horse battery staple");
        s
    }

    #[test]
    fn finds_a_planted_key_in_every_form() {
        let s = scanner();
        let k = key();
        let planted: Vec<(&str, Vec<u8>)> = vec![
            ("raw", k.clone()),
            ("lowercase hex", hex::encode(&k).into_bytes()),
            ("uppercase hex", hex::encode_upper(&k).into_bytes()),
            ("base64", base64::<Base64>(&k)),
            ("base64url", base64::<Base64UrlUnpadded>(&k)),
            ("a raw window", k[11..19].to_vec()),
            ("a hex window", hex::encode(&k[20..28]).into_bytes()),
            (
                "the passphrase",
                b"my correct horse battery staple!".to_vec(),
            ),
            ("part of the passphrase", b"battery stap".to_vec()),
        ];
        for (what, bytes) in planted {
            let mut text = b"INFO sealkv: database opened key=".to_vec();
            text.extend_from_slice(&bytes);
            text.extend_from_slice(b" done\n");
            assert!(!s.scan(&text).is_empty(), "{what} not found");
        }
        // Findings name the secret and the form, never the bytes.
        let found = s.scan(hex::encode(&k).as_bytes());
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("master: lowercase hex at"))
        );
        assert!(found.iter().all(|f| !f.contains(&hex::encode(&k[..8]))));
    }

    #[test]
    fn clean_text_and_short_pieces_are_not_findings() {
        let s = scanner();
        let k = key();
        assert!(
            s.scan(b"DEBUG sealkv: data key rotated new_key=#2")
                .is_empty()
        );
        // Seven bytes of the key are below the window.
        assert!(s.scan(&k[3..10]).is_empty());
        assert!(s.scan(b"battery").is_empty());
        assert!(format!("{s:?}").starts_with("SecretScanner("));
    }

    #[test]
    fn the_capture_records_every_level_and_field() {
        let logs = capture_logs();
        let k = key();
        tracing::trace!(secret = %hex::encode(&k), "planted at trace");
        let span = tracing::trace_span!("planted span", field = "battery staple xx");
        drop(span);
        let text = logs.snapshot();
        let found = scanner().scan(&text);
        assert!(
            found.iter().any(|f| f.starts_with("master: lowercase hex")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("passphrase: characters")),
            "{found:?}"
        );
        assert!(logs.count() >= 2);
    }
}
