//! A record type with every kind of index, and databases to keep it in.

use serde::{Deserialize, Serialize};

use sealkv::crypto::MasterKey;
use sealkv::{Config, Db};
use sealkv_collections::{Collection, Index, Schema, Sealed};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct User {
    pub(crate) id: u64,
    pub(crate) tenant: String,
    pub(crate) name: String,
    pub(crate) age: u32,
    pub(crate) email: Sealed<String>,
    pub(crate) ssn: Sealed<String>,
}

pub(crate) fn user(id: u64, tenant: &str, name: &str, age: u32, email: &str) -> User {
    User {
        id,
        tenant: tenant.into(),
        name: name.into(),
        age,
        email: Sealed::new(email.into()),
        ssn: Sealed::new(format!("ssn-{id:04}")),
    }
}

/// The email as its blind index normalizes it.
pub(crate) fn norm(email: &str) -> Option<String> {
    Some(email.trim().to_lowercase())
}

/// Users per tenant: a blind unique email, a plain unique name, a plain
/// age.
pub(crate) fn schema() -> Schema<User, u64> {
    Schema::new("users", |u: &User| u.id)
        .tenant(|u| u.tenant.clone())
        .index("email", Index::unique().blind(), |u| {
            u.email.value().map(|e| e.trim().to_lowercase())
        })
        .index("name", Index::unique(), |u| u.name.clone())
        .index("age", Index::plain(), |u| u.age)
}

pub(crate) fn key() -> MasterKey {
    MasterKey::from_bytes(&[7; 32]).unwrap()
}

pub(crate) fn open_db(dir: &std::path::Path, encrypted: bool) -> Db {
    // The key turns encryption at rest on; the flag after it decides.
    Config::new(dir)
        .encryption_key(key())
        .encrypt_at_rest(encrypted)
        .open()
        .unwrap()
}

pub(crate) fn users(db: &Db) -> Collection<User, u64> {
    Collection::open(db, schema()).unwrap()
}
