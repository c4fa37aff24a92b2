//! `--keyspace NAME`: which keyspace a command's records live in, and the
//! `keyspaces` command.
//!
//! Without `--keyspace` every command works on the default keyspace. A
//! command that writes (`put`, `load`) creates the named keyspace if it is
//! missing; one that reads or deletes (`get`, `scan`, `delete`) never
//! creates one: an absent keyspace holds no keys.

use std::ops::Bound;

use sealkv::{Db, DbIter, Keyspace, WriteBatch};

use crate::args::Global;
use crate::exit::CliError;
use crate::output::{self, Out};

/// The records a command works on: the default keyspace or a named one.
pub(crate) enum Target {
    /// The default keyspace.
    Default(Db),
    /// A named keyspace.
    Named(Keyspace),
}

impl Target {
    /// The keyspace `--keyspace` names in `db`, created if missing (for
    /// commands that write).
    pub(crate) fn for_writes(g: &Global, db: &Db) -> Result<Target, CliError> {
        Ok(match &g.keyspace {
            None => Target::Default(db.clone()),
            Some(name) => Target::Named(db.keyspace(name)?),
        })
    }

    /// The keyspace `--keyspace` names in `db`, or `None` if it does not
    /// exist (nothing to read or delete).
    pub(crate) fn for_reads(g: &Global, db: &Db) -> Result<Option<Target>, CliError> {
        match &g.keyspace {
            None => Ok(Some(Target::Default(db.clone()))),
            Some(name) if db.keyspaces()?.iter().any(|n| n == name) => {
                Ok(Some(Target::Named(db.keyspace(name)?)))
            }
            Some(_) => Ok(None),
        }
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CliError> {
        Ok(match self {
            Target::Default(db) => db.get(key)?,
            Target::Named(ks) => ks.get(key)?,
        })
    }

    /// Stores `value` under `key`.
    pub(crate) fn put(&self, key: &[u8], value: &[u8]) -> Result<(), CliError> {
        match self {
            Target::Default(db) => db.put(key, value)?,
            Target::Named(ks) => ks.put(key, value)?,
        }
        Ok(())
    }

    /// Deletes `key`.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), CliError> {
        match self {
            Target::Default(db) => db.delete(key)?,
            Target::Named(ks) => ks.delete(key)?,
        }
        Ok(())
    }

    /// Adds a put of `key` to `batch`, in this keyspace.
    pub(crate) fn batch_put(&self, batch: &mut WriteBatch, key: &[u8], value: &[u8]) {
        match self {
            Target::Default(_) => batch.put(key, value),
            Target::Named(ks) => batch.put_in(ks, key, value),
        };
    }

    /// The keys starting with `prefix`, in order.
    pub(crate) fn prefix(&self, prefix: &[u8]) -> Result<DbIter, CliError> {
        Ok(match self {
            Target::Default(db) => db.prefix(prefix)?,
            Target::Named(ks) => ks.prefix(prefix)?,
        })
    }

    /// The keys from `start` (inclusive) to `end` (exclusive), in order.
    pub(crate) fn range(
        &self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
    ) -> Result<DbIter, CliError> {
        let bounds = (
            start.map_or(Bound::Unbounded, Bound::Included),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        Ok(match self {
            Target::Default(db) => db.range::<&[u8]>(bounds)?,
            Target::Named(ks) => ks.range::<&[u8]>(bounds)?,
        })
    }
}

/// `sealkv keyspaces`: the named keyspaces, one per line (JSON: one
/// `{"keyspace": NAME}` object per line).
pub(crate) fn list(g: &Global) -> Result<(), CliError> {
    let db = crate::open::open_read_only(g)?;
    let mut out = Out::new();
    for name in db.keyspaces()? {
        if g.json {
            out.json(&serde_json::json!({ "keyspace": name }))?;
        } else {
            out.line(&name)?;
        }
    }
    out.finish()
}

/// `sealkv keyspaces --drop NAME`: removes the keyspace with all its keys
/// (exit 1 if there is none of that name).
pub(crate) fn drop(g: &Global, name: &str) -> Result<(), CliError> {
    let db = crate::open::open(g)?;
    let existed = db.drop_keyspace(name)?;
    crate::commands::close_after_writes(db, "the drop")?;
    if !existed {
        return Err(CliError::KeyspaceNotFound(name.to_string()));
    }
    if g.json {
        output::print_json(&serde_json::json!({ "dropped": name }))
    } else {
        output::println(&format!("dropped keyspace {name}"))
    }
}
