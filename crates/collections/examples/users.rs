//! Users of several tenants: a unique email found through a blind index, a
//! sealed national id, and a tenant's erasure request.
//!
//! ```sh
//! cargo run -p sealkv-collections --example users
//! ```

#![allow(clippy::print_stdout)]

use serde::{Deserialize, Serialize};

use sealkv::Config;
use sealkv::crypto::MasterKey;
use sealkv_collections::{Collection, Error, Index, Schema, Sealed, Tenants};

#[derive(Debug, Serialize, Deserialize)]
struct User {
    id: u64,
    tenant: String,
    name: String,
    /// Sealed on disk; found by equality through a blind index.
    email: Sealed<String>,
    /// Sealed on disk; never indexed.
    national_id: Sealed<String>,
}

/// How the email index normalizes an address (lookups pass the same).
fn normalized(email: &str) -> Option<String> {
    Some(email.trim().to_lowercase())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Config::new(dir.path())
        .encryption_key(MasterKey::random()?)
        .open()?;
    let users = Collection::open(
        &db,
        Schema::new("users", |u: &User| u.id)
            .tenant(|u| u.tenant.clone())
            .index("email", Index::unique().blind(), |u| {
                u.email.value().and_then(|e| normalized(e))
            })
            .index("tenant", Index::plain(), |u| u.tenant.clone()),
    )?;

    let people = [
        (1, "acme", "Ada", "ada@acme.example", "078-05-1120"),
        (2, "acme", "Grace", "grace@acme.example", "219-09-9999"),
        (3, "globex", "Alan", "alan@globex.example", "457-55-5462"),
    ];
    db.transaction(|tx| {
        for (id, tenant, name, email, national_id) in people {
            users.in_tx(tx).insert(&User {
                id,
                tenant: tenant.into(),
                name: name.into(),
                email: Sealed::new(email.into()),
                national_id: Sealed::new(national_id.into()),
            })?;
        }
        Ok::<_, Error>(())
    })?;

    let grace = users.find_in_tenant("acme", "email", &normalized(" Grace@ACME.example"))?;
    println!("found by email: {}", grace[0].name);

    let taken = users.insert(&User {
        id: 4,
        tenant: "acme".into(),
        name: "Impostor".into(),
        email: Sealed::new("ADA@acme.example".into()),
        national_id: Sealed::new(String::new()),
    });
    assert!(matches!(taken, Err(Error::UniqueViolation { .. })));
    println!("a second account for ada@acme.example is refused");

    // The erasure request: acme's sealed fields are gone for good, its
    // blind index entries can no longer be matched to any address.
    Tenants::open(&db)?.erase("acme")?;
    for user in users.find("tenant", "acme")? {
        println!(
            "{} (acme): email erased: {}, national id erased: {}",
            user.name,
            user.email.is_erased(),
            user.national_id.is_erased()
        );
    }
    assert!(
        users
            .find_in_tenant("acme", "email", &normalized("ada@acme.example"))?
            .is_empty()
    );
    let alan = users.get(&3)?.ok_or("alan is missing")?;
    println!("globex untouched: {:?}", alan.national_id.value());
    let report = users.verify()?;
    println!(
        "verify: {} records, {} entries, clean: {}",
        report.records,
        report.entries,
        report.is_clean()
    );
    Ok(())
}
