//! sealkv's page file: a copy-on-write B+tree of sealed pages, two
//! alternating meta pages, free-page management with reader tracking, and a
//! bounded cache of decrypted pages.
//!
//! Every page but the public header is sealed with an AEAD under the writer
//! session's page subkey (or carries a CRC32C in plaintext mode), bound to
//! its database, slot and format, and every pointer records the tag of the
//! page it points to, so a stale copy of a page put back in place is caught
//! as [`StoreError::Rollback`]. Commits write new pages, fsync, then write the
//! meta page and fsync: a crash leaves either the old or the new state.
//!
//! - **Readers** ([`Store::read`]) each hold one committed root; any number
//!   run beside the single writer ([`Store::write`]) without blocking it or
//!   each other. Pages freed by commit N are reused from commit N+2 on, and
//!   only once no reader holds snapshot N or an older one.
//! - **The cache** holds decoded pages keyed by (page, expected tag), bounded
//!   in bytes and sharded. A hit costs no decryption and is still exactly
//!   the version its parent names. Decrypted pages are plaintext in memory:
//!   the cache is as sensitive as the data.
//! - **[`Store::verify`]** walks every reachable and free page;
//!   [`Store::zero_free_pages`] wipes the free ones; [`ReadTxn::pages`] and
//!   [`ReadTxn::raw_page`] let a physical backup copy a snapshot page by
//!   page, still sealed.
//! - Each open for writing is a new writer session (fresh salt); a session
//!   that reaches 2^32 seals is replaced by a new one.
//!
//! The byte layout is in `docs/FORMAT.md`, section "Page file".
//!
//! # Example
//!
//! ```
//! use std::ops::Bound;
//! use std::path::Path;
//! use std::sync::Arc;
//! use sealkv_core_store::{Store, StoreOptions};
//! use sealkv_crypto_envelope::{CryptoProvider, DataKey, DbId, EncryptionAlgorithm, KeyId, Keyring, SecretKey};
//! use sealkv_fileio::{SimVfs, Vfs};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keyring = Arc::new(Keyring::new(DbId::random()?, Arc::new(CryptoProvider::default())));
//! keyring.insert(DataKey::new(KeyId(1), EncryptionAlgorithm::Aes256Gcm.id(), SecretKey::random()?));
//! keyring.set_active(KeyId(1))?;
//! let vfs = Arc::new(SimVfs::new());
//! vfs.create_dir_all(Path::new("/db"))?;
//! let options = StoreOptions { keyring: Some(keyring), ..StoreOptions::default() };
//! let (store, _report) = Store::create(vfs, Path::new("/db/data.sealkv"), options)?;
//!
//! let mut w = store.write()?;
//! w.put(b"apple", b"red")?;
//! w.put(b"banana", b"yellow")?;
//! w.set_app_meta(b"applied=2")?;
//! w.commit()?;
//!
//! let r = store.read();
//! assert_eq!(r.get(b"apple")?, Some(b"red".to_vec()));
//! let keys: Vec<Vec<u8>> = r
//!     .range(Bound::Included(b"b".as_slice()), Bound::Unbounded)
//!     .rev()
//!     .map(|e| e.map(|(k, _)| k))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(keys, vec![b"banana".to_vec()]);
//! assert!(store.verify()?.is_clean());
//! # Ok(())
//! # }
//! ```

mod cache;
#[cfg(test)]
mod crafted_tests;
mod error;
mod format;
#[cfg(feature = "fuzzing")]
mod fuzz;
mod meta;
mod node;
mod read;
mod seal;
mod store;
mod verify;
mod write;

pub use error::{Result, StoreError};
pub use format::{
    DEFAULT_CACHE_BYTES, DEFAULT_PAGE_SIZE, FORMAT_VERSION, MAX_APP_META, MAX_PAGE_SIZE,
    MAX_VALUE_LEN, MIN_PAGE_SIZE, Tag,
};
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use fuzz::{fuzz_open, fuzz_page};
pub use node::ChildRef;
pub use read::{Entry, PinnedRead, Range, ReadTxn};
pub use store::{OpenReport, Store, StoreOptions, StoreStats};
pub use verify::{PageRole, Problem, VerifyReport};
pub use write::{Op, WriteTxn};
