//! sealkv under test: one [`Engine`] per mode (plaintext, or an algorithm
//! of a provider), each with its own database directory.
//!
//! Durable batches are `Db::write` under the default `SyncMode::Always`
//! (an fsync per commit, shared by concurrent commits); transactions are
//! `Db::transaction` (optimistic, retried on conflict), the counters and
//! accounts in named keyspaces of their own. A transaction that
//! `Db::transaction` gives up on (`Error::Conflict` once its retries are
//! spent) is run again by the bench, up to [`BENCH_RETRIES`] times, and
//! counted: the report names how many there were.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sealkv::crypto::{CryptoProvider, EncryptionAlgorithm, MasterKey};
use sealkv::{Config, Db, Keyspace, Transaction, WriteBatch};

use sealkv_collections::{Collection, Index, Schema, Sealed};

use super::engine::{
    Batch, Body, Check, Engine, Open, PeopleWork, Reader, Store, Table, Txn, Visit,
};
use super::people::{People, Person, Table as PeopleTable, VisitPerson};
use super::records::remove_dir;
use crate::exit::CliError;

/// One way of storing the data: plaintext, or an algorithm from a provider.
#[derive(Clone)]
pub(crate) struct Mode {
    /// Column name in the report.
    pub(crate) name: &'static str,
    pub(crate) algorithm: Option<EncryptionAlgorithm>,
    pub(crate) provider: Arc<CryptoProvider>,
}

impl Mode {
    /// Plaintext, then AES-256-GCM and ChaCha20-Poly1305 with the default
    /// provider, then (feature `ring`) both with the `ring` provider.
    pub(crate) fn all() -> Vec<Mode> {
        let rc = Arc::new(CryptoProvider::rustcrypto());
        #[allow(unused_mut)]
        let mut modes = vec![
            Mode {
                name: "plaintext",
                algorithm: None,
                provider: rc.clone(),
            },
            Mode {
                name: "aes-256-gcm",
                algorithm: Some(EncryptionAlgorithm::Aes256Gcm),
                provider: rc.clone(),
            },
            Mode {
                name: "chacha20-poly1305",
                algorithm: Some(EncryptionAlgorithm::ChaCha20Poly1305),
                provider: rc,
            },
        ];
        #[cfg(feature = "ring")]
        {
            let ring = Arc::new(CryptoProvider::ring());
            modes.push(Mode {
                name: "aes-256-gcm (ring)",
                algorithm: Some(EncryptionAlgorithm::Aes256Gcm),
                provider: ring.clone(),
            });
            modes.push(Mode {
                name: "chacha20-poly1305 (ring)",
                algorithm: Some(EncryptionAlgorithm::ChaCha20Poly1305),
                provider: ring,
            });
        }
        modes
    }
}

/// How many times the bench runs a transaction again after
/// `Db::transaction` answered `Error::Conflict`.
pub(crate) const BENCH_RETRIES: u32 = 1_000;

/// One mode's database directory and options.
pub(crate) struct Target {
    pub(crate) mode: Mode,
    pub(crate) dir: PathBuf,
    /// The page cache in MiB; `None`: the configuration's default.
    pub(crate) cache_mib: Option<u64>,
    /// Transactions `Db::transaction` gave up on since the last
    /// [`Engine::take_given_up`].
    pub(crate) given_up: AtomicU64,
}

impl Target {
    pub(crate) fn new(mode: Mode, dir: PathBuf, cache_mib: Option<u64>) -> Self {
        Target {
            mode,
            dir,
            cache_mib,
            given_up: AtomicU64::new(0),
        }
    }
}

impl Target {
    fn config(&self, create: bool) -> Result<Config, CliError> {
        let mut c = Config::new(&self.dir)
            .create_if_missing(create)
            .crypto_provider(self.mode.provider.clone());
        if let Some(mib) = self.cache_mib {
            c = c.cache_size(mib << 20);
        }
        if let Some(alg) = self.mode.algorithm {
            // A fixed benchmark key: the data is throwaway.
            let key =
                MasterKey::from_bytes(&[0x42; 32]).map_err(|e| CliError::Key(e.to_string()))?;
            c = c.encryption_key(key).encryption_algorithm(alg);
        }
        Ok(c)
    }

    /// Opens the database (creating it when `create`).
    pub(crate) fn open(&self, create: bool) -> Result<Db, CliError> {
        Ok(Db::open_with_config(self.config(create)?)?)
    }
}

impl Engine for Target {
    fn name(&self) -> &'static str {
        self.mode.name
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn session(
        &self,
        open: Open,
        work: &mut dyn FnMut(&dyn Store) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        if open == Open::Fresh {
            remove_dir(&self.dir)?;
        }
        let db = self.open(open == Open::Fresh)?;
        let result = (|| {
            let keyspaces = match open {
                Open::Transactional => Some(Keyspaces {
                    counters: db.keyspace(Table::Counters.name())?,
                    accounts: db.keyspace(Table::Accounts.name())?,
                }),
                Open::Fresh | Open::Existing => None,
            };
            work(&SealStore {
                db: &db,
                keyspaces,
                given_up: &self.given_up,
            })
        })();
        let closed = db.close();
        result?;
        Ok(closed?)
    }

    fn take_given_up(&self) -> u64 {
        self.given_up.swap(0, Ordering::Relaxed)
    }

    fn runs_people(&self) -> bool {
        true
    }

    fn people(
        &self,
        fresh: bool,
        table: PeopleTable,
        work: PeopleWork<'_>,
    ) -> Result<(), CliError> {
        if fresh {
            remove_dir(&self.dir)?;
        }
        let db = Db::open_with_config(self.people_config(fresh)?)?;
        let result = match table {
            PeopleTable::Plain => Collection::open(&db, plain_schema())
                .map_err(coll)
                .and_then(|c| work(&PlainPeople(c))),
            PeopleTable::Sealed => Collection::open(&db, sealed_schema())
                .map_err(coll)
                .and_then(|c| work(&SealedPeople(c))),
        };
        let closed = db.close();
        result?;
        Ok(closed?)
    }
}

/// The named keyspaces of the transaction workloads.
struct Keyspaces {
    counters: Keyspace,
    accounts: Keyspace,
}

struct SealStore<'a> {
    db: &'a Db,
    keyspaces: Option<Keyspaces>,
    given_up: &'a AtomicU64,
}

impl Store for SealStore<'_> {
    fn write(&self, batch: &Batch) -> Result<(), CliError> {
        let mut b = WriteBatch::new();
        for (k, v) in batch.iter() {
            b.put(k, v);
        }
        Ok(self.db.write(&b)?)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>, CliError> {
        Ok(Box::new(SealReader { db: self.db }))
    }

    fn transaction(&self, body: Body<'_>) -> Result<(), CliError> {
        let keyspaces = self.keyspaces.as_ref();
        let mut attempts = 0;
        loop {
            match self
                .db
                .transaction(|tx| body(&mut SealTxn { tx, keyspaces }))
            {
                Err(CliError::Db(sealkv::Error::Conflict)) if attempts < BENCH_RETRIES => {
                    attempts += 1;
                    self.given_up.fetch_add(1, Ordering::Relaxed);
                }
                other => return other,
            }
        }
    }
}

struct SealReader<'a> {
    db: &'a Db,
}

impl Reader for SealReader<'_> {
    fn get(&mut self, key: &[u8], check: Check<'_>) -> Result<(), CliError> {
        let got = self.db.get(key)?;
        check(got.as_deref())
    }

    fn scan(&mut self, start: &[u8], limit: u64, visit: Visit<'_>) -> Result<u64, CliError> {
        let mut seen = 0;
        for item in self.db.range(start..)? {
            if seen == limit {
                break;
            }
            let (k, v) = item?;
            visit(&k, &v)?;
            seen += 1;
        }
        Ok(seen)
    }
}

struct SealTxn<'t> {
    tx: &'t mut Transaction,
    keyspaces: Option<&'t Keyspaces>,
}

/// The keyspace of `table` (`None`: the default keyspace, the records').
fn keyspace(keyspaces: Option<&Keyspaces>, table: Table) -> Result<Option<&Keyspace>, CliError> {
    if table == Table::Records {
        return Ok(None);
    }
    let ks = keyspaces.ok_or_else(|| {
        CliError::Usage(format!(
            "bench: the {} keyspace needs a transactional session",
            table.name()
        ))
    })?;
    Ok(Some(if table == Table::Counters {
        &ks.counters
    } else {
        &ks.accounts
    }))
}

impl Txn for SealTxn<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, CliError> {
        Ok(match keyspace(self.keyspaces, table)? {
            None => self.tx.get(key)?,
            Some(ks) => self.tx.get_in(ks, key)?,
        })
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), CliError> {
        match keyspace(self.keyspaces, table)? {
            None => self.tx.put(key, value)?,
            Some(ks) => self.tx.put_in(ks, key, value)?,
        }
        Ok(())
    }
}

/// A person whose email is sealed: the sealed `person` table's record.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedPerson {
    id: u64,
    email: Sealed<String>,
    name: String,
    age: u32,
}

/// The plain `person` table: a unique index on the email, a plain one on
/// the age.
fn plain_schema() -> Schema<Person, u64> {
    Schema::new("person", |p: &Person| p.id)
        .index("email", Index::unique(), |p| p.email.clone())
        .index("age", Index::plain(), |p| p.age)
}

/// The sealed `person` table: the email sealed, its unique index blind.
fn sealed_schema() -> Schema<SealedPerson, u64> {
    Schema::new("person", |p: &SealedPerson| p.id)
        .index("email", Index::unique().blind(), |p| {
            p.email.value().cloned()
        })
        .index("age", Index::plain(), |p| p.age)
}

impl Target {
    /// The configuration of the collections database: the mode's, and in
    /// plaintext mode a key that only seals the sealed fields (the
    /// database itself stays plaintext at rest).
    fn people_config(&self, create: bool) -> Result<Config, CliError> {
        let c = self.config(create)?;
        if self.mode.algorithm.is_some() {
            return Ok(c);
        }
        let key = MasterKey::from_bytes(&[0x42; 32]).map_err(|e| CliError::Key(e.to_string()))?;
        Ok(c.encryption_key(key).encrypt_at_rest(false))
    }
}

/// A collections error as the CLI's: the engine's own as it is, the
/// others (a unique violation, a damaged record or index entry) as a
/// failed check of what the bench wrote.
fn coll(e: sealkv_collections::Error) -> CliError {
    match e {
        sealkv_collections::Error::Db(e) => CliError::Db(e),
        other => CliError::CheckFailed(format!("bench: collections: {other}")),
    }
}

/// The plain `person` table of sealkv-collections.
struct PlainPeople(Collection<Person, u64>);

impl People for PlainPeople {
    fn insert(&self, ids: &[u64]) -> Result<(), CliError> {
        self.0
            .db()
            .transaction(|tx| {
                let mut c = self.0.in_tx(tx);
                for &id in ids {
                    c.insert(&Person::of(id))?;
                }
                Ok::<_, sealkv_collections::Error>(())
            })
            .map_err(coll)
    }

    fn by_email(&self, email: &str) -> Result<Option<Person>, CliError> {
        self.0.find_unique("email", email).map_err(coll)
    }

    fn by_age(&self, lo: u32, hi: u32, visit: VisitPerson<'_>) -> Result<(), CliError> {
        for p in self.0.range_by("age", lo..hi).map_err(coll)? {
            visit(p)?;
        }
        Ok(())
    }
}

/// The sealed `person` table of sealkv-collections.
struct SealedPeople(Collection<SealedPerson, u64>);

/// A sealed person as a [`Person`] (an email it cannot read is an empty
/// one, which no check accepts).
fn unsealed(p: SealedPerson) -> Person {
    Person {
        id: p.id,
        email: p.email.into_value().unwrap_or_default(),
        name: p.name,
        age: p.age,
    }
}

impl People for SealedPeople {
    fn insert(&self, ids: &[u64]) -> Result<(), CliError> {
        self.0
            .db()
            .transaction(|tx| {
                let mut c = self.0.in_tx(tx);
                for &id in ids {
                    let p = Person::of(id);
                    c.insert(&SealedPerson {
                        id: p.id,
                        email: Sealed::new(p.email),
                        name: p.name,
                        age: p.age,
                    })?;
                }
                Ok::<_, sealkv_collections::Error>(())
            })
            .map_err(coll)
    }

    fn by_email(&self, email: &str) -> Result<Option<Person>, CliError> {
        Ok(self
            .0
            .find_unique("email", &Some(email.to_string()))
            .map_err(coll)?
            .map(unsealed))
    }

    fn by_age(&self, lo: u32, hi: u32, visit: VisitPerson<'_>) -> Result<(), CliError> {
        for p in self.0.range_by("age", lo..hi).map_err(coll)? {
            visit(unsealed(p))?;
        }
        Ok(())
    }
}
