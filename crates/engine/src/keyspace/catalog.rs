//! The catalog: which named keyspaces exist, under which ids.
//!
//! It is keyspace 1 of the database, written through the log like any
//! data (so it is sealed in an encrypted database, and a crash keeps or
//! loses a creation or a drop whole). Its records:
//!
//! ```text
//! 0x01 name        -> id (u32 big-endian)       a live keyspace
//! 0x02             -> next id (u32 big-endian)  ids are never reused
//! 0x03 id (u32 BE) -> name                      dropped, data not yet purged
//! ```
//!
//! Dropping a keyspace is one batch (the name goes, the purge marker comes),
//! after which no batch may write to the keyspace; then its keys are
//! deleted in bounded batches, and the marker goes last. A crash in between
//! leaves the marker, and the next open finishes the purge.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use sealkv_core_wal::{Durability, RecoveryMode};

use super::KeyspaceState;
use super::prefix::{CATALOG, FIRST_NAMED, KeyspaceId, Prefix};
use crate::Error;
use crate::batch::WriteBatch;
use crate::db::{Inner, View};
use crate::iter::borrowed;
use crate::write::Commit;

const NAME: u8 = 0x01;
const NEXT_ID: u8 = 0x02;
const DROPPED: u8 = 0x03;

/// Keys deleted per purge batch, and the bytes of keys per batch.
const PURGE_KEYS: usize = 1024;
const PURGE_BYTES: usize = 4 << 20;

/// The catalog as the open database holds it. Creations and drops hold its
/// lock, so two of them never race.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    state: Mutex<CatalogState>,
}

#[derive(Debug, Default)]
struct CatalogState {
    /// Why the catalog could not be read at open (a damaged page): the
    /// default keyspace still works, and every keyspace operation answers
    /// this `Corruption`.
    unreadable: Option<(std::path::PathBuf, String)>,
    by_name: BTreeMap<String, Arc<KeyspaceState>>,
    next_id: KeyspaceId,
    /// Dropped keyspaces whose keys may remain.
    unpurged: Vec<KeyspaceId>,
}

fn name_key(name: &str) -> Vec<u8> {
    let mut k = vec![NAME];
    k.extend_from_slice(name.as_bytes());
    k
}

fn dropped_key(id: KeyspaceId) -> Vec<u8> {
    let mut k = vec![DROPPED];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn id_of(bytes: &[u8]) -> Option<KeyspaceId> {
    <[u8; 4]>::try_from(bytes).ok().map(u32::from_be_bytes)
}

/// The catalog's records as of one view.
#[derive(Debug, Default)]
pub(crate) struct Records {
    /// Live keyspaces by name.
    pub(crate) names: BTreeMap<String, KeyspaceId>,
    pub(crate) next_id: KeyspaceId,
    /// Dropped keyspaces whose keys may remain.
    pub(crate) dropped: Vec<KeyspaceId>,
}

/// Reads and checks the catalog as `view` sees it.
pub(crate) fn read(view: &View) -> Result<Records, Error> {
    let catalog = Prefix::of(CATALOG);
    let corrupt = |what: String| Error::Corruption {
        file: view.db.dir.join(crate::layout::DATA_FILE),
        what: format!("keyspace catalog: {what}"),
    };
    let mut out = Records {
        next_id: FIRST_NAMED,
        ..Records::default()
    };
    for item in view.iter_in(&catalog, (Bound::Unbounded, Bound::Unbounded)) {
        let (key, value) = item?;
        match key.split_first() {
            Some((&NAME, name)) => {
                let name = String::from_utf8(name.to_vec())
                    .map_err(|_| corrupt("a name that is not UTF-8".into()))?;
                // The name is the application's data: errors never show it.
                let id = id_of(&value)
                    .filter(|id| *id >= FIRST_NAMED)
                    .ok_or_else(|| corrupt("a live keyspace has a bad id".into()))?;
                out.names.insert(name, id);
            }
            Some((&NEXT_ID, [])) => {
                out.next_id = id_of(&value)
                    .filter(|id| *id >= FIRST_NAMED)
                    .ok_or_else(|| corrupt("bad next id".into()))?;
            }
            Some((&DROPPED, id)) => {
                out.dropped
                    .push(id_of(id).ok_or_else(|| corrupt("bad dropped id".into()))?);
            }
            _ => return Err(corrupt("an unknown record".into())),
        }
    }
    // Every id a named one below the next id, no id used twice: a purge
    // marker naming the default keyspace, the catalog or a live keyspace
    // would delete it at the next open.
    let mut seen = std::collections::BTreeSet::new();
    for id in out.names.values().chain(&out.dropped) {
        if !(FIRST_NAMED..out.next_id).contains(id) {
            return Err(corrupt(format!(
                "keyspace id {id} is not between {FIRST_NAMED} and the next id {}",
                out.next_id
            )));
        }
        if !seen.insert(*id) {
            return Err(corrupt(format!("keyspace id {id} is used twice")));
        }
    }
    Ok(out)
}

impl CatalogState {
    /// The damage that made the catalog unreadable, if any.
    fn check_readable(&self) -> Result<(), Error> {
        match &self.unreadable {
            None => Ok(()),
            Some((file, what)) => Err(Error::Corruption {
                file: file.clone(),
                what: what.clone(),
            }),
        }
    }
}

impl Catalog {
    fn lock(&self) -> MutexGuard<'_, CatalogState> {
        self.state.lock()
    }

    /// Reads the catalog from the database's current state. A catalog on a
    /// damaged page leaves the database open with its default keyspace
    /// (a damaged leaf fails only the reads that need it); keyspace
    /// operations then answer that damage.
    pub(crate) fn load(db: &Arc<Inner>) -> Result<(), Error> {
        let view = db.view()?;
        let records = match read(&view) {
            Ok(records) => records,
            Err(Error::Corruption { file, what }) => {
                tracing::warn!(%what, "the keyspace catalog cannot be read; named keyspaces are unavailable");
                *db.catalog.lock() = CatalogState {
                    unreadable: Some((file, what)),
                    ..CatalogState::default()
                };
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        // Ids are never reused, even when recovery that skips damaged
        // records lost a creation whose keys survived: in that mode the
        // next id is above every id a stored key carries. (Only then: it
        // reads the tree's last leaf, and no other mode can lose a
        // creation and keep a later record.)
        let highest = if db.config.recovery_mode == RecoveryMode::SkipAnyCorruptedRecords {
            view.iter_stored_range(Bound::Unbounded, Bound::Unbounded, 0)
                .next_back()
                .transpose()?
                .and_then(|(key, _)| Prefix::id_of_key(&key))
        } else {
            None
        };
        let next_id = match highest {
            Some(id) if id >= records.next_id => {
                tracing::warn!(
                    keyspace = id,
                    next_id = records.next_id,
                    "keys of a keyspace the catalog does not know; its id is not reused"
                );
                id.saturating_add(1)
            }
            _ => records.next_id,
        };
        let mut st = CatalogState {
            next_id,
            unpurged: records.dropped,
            ..CatalogState::default()
        };
        for (name, id) in records.names {
            let state = KeyspaceState::new(id, name.clone(), db.instance);
            st.by_name.insert(name, Arc::new(state));
        }
        *db.catalog.lock() = st;
        Ok(())
    }

    /// The named keyspace, created if it does not exist yet (durably, as
    /// the sync mode says, before this returns).
    pub(crate) fn open_or_create(db: &Arc<Inner>, name: &str) -> Result<Arc<KeyspaceState>, Error> {
        super::check_name(name)?;
        let mut st = db.catalog.lock();
        st.check_readable()?;
        if let Some(state) = st.by_name.get(name) {
            return Ok(state.clone());
        }
        if db.wal.is_none() {
            return Err(Error::KeyspaceNotFound { name: name.into() });
        }
        let id = st.next_id;
        let next = id
            .checked_add(1)
            .ok_or_else(|| Error::InvalidConfig("every keyspace id has been used".into()))?;
        let catalog = Prefix::of(CATALOG);
        let mut batch = WriteBatch::new();
        batch.raw_put(catalog.as_bytes(), &name_key(name), &id.to_be_bytes());
        batch.raw_put(catalog.as_bytes(), &[NEXT_ID], &next.to_be_bytes());
        db.commit(&batch, Commit::plain(Durability::AsConfigured))?;
        st.next_id = next;
        let state = Arc::new(KeyspaceState::new(id, name.to_string(), db.instance));
        st.by_name.insert(name.to_string(), state.clone());
        tracing::debug!(keyspace = id, "keyspace created");
        Ok(state)
    }

    /// The names of the live keyspaces, in order.
    pub(crate) fn names(&self) -> Result<Vec<String>, Error> {
        let st = self.lock();
        st.check_readable()?;
        Ok(st.by_name.keys().cloned().collect())
    }

    /// Drops `name`: after this returns, its data is gone and its handles
    /// answer [`Error::KeyspaceDropped`]. Returns whether it existed.
    pub(crate) fn drop_keyspace(db: &Arc<Inner>, name: &str) -> Result<bool, Error> {
        super::check_name(name)?;
        let state = {
            let mut st = db.catalog.lock();
            st.check_readable()?;
            let Some(state) = st.by_name.get(name).cloned() else {
                return Ok(false);
            };
            let catalog = Prefix::of(CATALOG);
            let mut batch = WriteBatch::new();
            batch.raw_delete(catalog.as_bytes(), &name_key(name));
            batch.raw_put(catalog.as_bytes(), &dropped_key(state.id), name.as_bytes());
            db.commit(
                &batch,
                Commit {
                    drops: Some(&state),
                    ..Commit::plain(Durability::AsConfigured)
                },
            )?;
            st.by_name.remove(name);
            st.unpurged.push(state.id);
            state
        };
        tracing::debug!(keyspace = state.id, "keyspace dropped; purging its keys");
        Self::purge(db, state.id)?;
        Ok(true)
    }

    /// Finishes the purge of every dropped keyspace whose keys may remain
    /// (a drop interrupted by a crash or an error).
    pub(crate) fn purge_unfinished(db: &Arc<Inner>) -> Result<(), Error> {
        let ids = db.catalog.lock().unpurged.clone();
        for id in ids {
            Self::purge(db, id)?;
        }
        Ok(())
    }

    /// Deletes every key of dropped keyspace `id` in bounded batches (each
    /// atomic), then its purge marker.
    fn purge(db: &Arc<Inner>, id: KeyspaceId) -> Result<(), Error> {
        let prefix = Prefix::of(id);
        let mut deleted = 0u64;
        // Each round starts after the last key it deleted, so the deleted
        // keys (tombstones over the tree until the next flush) are not
        // walked again.
        let mut after: Bound<Vec<u8>> = prefix.lower(Bound::Unbounded);
        let end = prefix.upper(Bound::Unbounded);
        loop {
            let view = db.view()?;
            let mut batch = WriteBatch::new();
            let mut bytes = 0;
            let mut last = None;
            for item in view.iter_stored_range(borrowed(&after), borrowed(&end), 0) {
                let (key, _) = item?;
                bytes += key.len();
                batch.raw_delete(&[], &key);
                last = Some(key);
                if batch.len() >= PURGE_KEYS || bytes >= PURGE_BYTES {
                    break;
                }
            }
            let Some(last) = last else { break };
            deleted += batch.len() as u64;
            db.commit(&batch, Commit::plain(Durability::AsConfigured))?;
            after = Bound::Excluded(last);
        }
        let mut batch = WriteBatch::new();
        batch.raw_delete(Prefix::of(CATALOG).as_bytes(), &dropped_key(id));
        db.commit(&batch, Commit::plain(Durability::AsConfigured))?;
        db.catalog.lock().unpurged.retain(|u| *u != id);
        tracing::debug!(keyspace = id, deleted, "dropped keyspace purged");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind, SimVfs, Vfs};

    use super::*;
    use crate::{Config, Db};

    const KEYS: u32 = 2500;

    fn config(vfs: Arc<dyn Vfs>) -> Config {
        Config::new("/db").vfs(vfs)
    }

    /// A database with keyspace `temp` (more keys than one purge batch
    /// takes) and keyspace `keep`, everything flushed.
    fn setup(vfs: Arc<dyn Vfs>) -> Db {
        let db = Db::open_with_config(config(vfs)).unwrap();
        let temp = db.keyspace("temp").unwrap();
        for chunk in 0..KEYS / 500 {
            let mut batch = WriteBatch::new();
            for i in 0..500 {
                batch.put_in(&temp, (chunk * 500 + i).to_be_bytes(), b"v");
            }
            db.write(&batch).unwrap();
        }
        db.keyspace("keep").unwrap().put(b"k", b"v").unwrap();
        db.flush().unwrap();
        db
    }

    /// The stored keys of keyspace `id`, whatever the catalog says.
    fn stored_keys(db: &Db, id: KeyspaceId) -> usize {
        let prefix = Prefix::of(id);
        let view = db.inner.view().unwrap();
        view.iter_in(&prefix, (Bound::Unbounded, Bound::Unbounded))
            .count()
    }

    /// A drop cut short at every write it makes (the drop record, each
    /// purge batch, the marker's removal), then a power cut: after the
    /// reopen the keyspace is either whole, or gone with every one of its
    /// keys — the reopen finishes a purge the cut interrupted.
    #[test]
    fn a_drop_cut_short_anywhere_is_whole_or_finished_after_reopen() {
        let sim = SimVfs::new();
        let faulty = FaultyVfs::over_sim(&sim);
        let db = setup(Arc::new(faulty.clone()));
        let id = db.keyspace("temp").unwrap().state.id;
        let before = faulty.counts().get(OpKind::Write);
        assert!(db.drop_keyspace("temp").unwrap());
        let writes = faulty.counts().get(OpKind::Write) - before;
        assert!(writes >= 4, "the drop made {writes} writes");
        drop(db);

        let mut finished_at_open = 0;
        for nth in 1..=writes {
            let sim = SimVfs::new();
            let faulty = FaultyVfs::over_sim(&sim);
            let db = setup(Arc::new(faulty.clone()));
            faulty.arm(FaultPlan::from(OpKind::Write, nth));
            let dropped = db.drop_keyspace("temp");
            assert!(faulty.injected() > 0, "write {nth}: no fault fired");
            // (A failed sync-marker write is taken back and reported by
            // nothing: the writes before it were durable.)
            sim.crash();
            std::mem::forget(db);
            let db = Db::open_with_config(config(Arc::new(sim.clone()))).unwrap();
            let names = db.keyspaces().unwrap();
            assert!(names.contains(&"keep".to_string()));
            if names.contains(&"temp".to_string()) {
                assert!(
                    dropped.is_err(),
                    "write {nth}: a drop reported done was undone"
                );
                assert_eq!(
                    stored_keys(&db, id),
                    KEYS as usize,
                    "write {nth}: partly dropped"
                );
            } else {
                assert_eq!(stored_keys(&db, id), 0, "write {nth}: keys left behind");
                assert!(db.inner.catalog.lock().unpurged.is_empty());
                finished_at_open += u32::from(dropped.is_err());
            }
        }
        // Some cuts fell after the drop record was durable: the open
        // finished those purges.
        assert!(finished_at_open > 0);
    }

    /// Writes raw catalog records, as damage that authenticates would
    /// leave them (a writer's bug, or a plaintext file edited).
    fn put_catalog(db: &Db, key: &[u8], value: &[u8]) {
        let mut batch = WriteBatch::new();
        batch.raw_put(Prefix::of(CATALOG).as_bytes(), key, value);
        db.inner
            .commit(&batch, Commit::plain(Durability::AsConfigured))
            .unwrap();
    }

    /// A catalog whose ids would make the open delete or alias a keyspace
    /// is `Corruption` for every keyspace operation, found before any purge
    /// runs; the default keyspace stays readable.
    #[test]
    fn a_catalog_with_impossible_ids_is_corruption() {
        let cases: [(&str, Vec<u8>, Vec<u8>); 6] = [
            (
                "purge marker for the default keyspace",
                dropped_key(0),
                b"x".to_vec(),
            ),
            (
                "purge marker for the catalog",
                dropped_key(CATALOG),
                b"x".to_vec(),
            ),
            (
                "purge marker for a live keyspace",
                dropped_key(FIRST_NAMED),
                b"x".to_vec(),
            ),
            (
                "purge marker at the next id",
                dropped_key(FIRST_NAMED + 2),
                b"x".to_vec(),
            ),
            (
                "next id of the catalog",
                vec![NEXT_ID],
                CATALOG.to_be_bytes().to_vec(),
            ),
            (
                "two names, one id",
                name_key("twin"),
                FIRST_NAMED.to_be_bytes().to_vec(),
            ),
        ];
        for (what, key, value) in cases {
            let sim = SimVfs::new();
            let db = Db::open_with_config(config(Arc::new(sim.clone()))).unwrap();
            db.put(b"default", b"kept").unwrap();
            db.keyspace("live").unwrap().put(b"k", b"kept").unwrap();
            db.keyspace("other").unwrap();
            put_catalog(&db, &key, &value);
            db.close().unwrap();
            // The database opens with its default keyspace; every keyspace
            // operation answers the damage, and no purge ran.
            let db = Db::open_with_config(config(Arc::new(sim.clone()))).unwrap();
            assert_eq!(db.get(b"default").unwrap().as_deref(), Some(&b"kept"[..]));
            let err = db.keyspaces().unwrap_err();
            assert!(matches!(err, Error::Corruption { .. }), "{what}: {err:?}");
            // The message names no keyspace.
            assert!(!err.to_string().contains("live"), "{what}: {err}");
            let err = db.keyspace("live").unwrap_err();
            assert!(matches!(err, Error::Corruption { .. }), "{what}: {err:?}");
            let err = db.drop_keyspace("live").unwrap_err();
            assert!(matches!(err, Error::Corruption { .. }), "{what}: {err:?}");
            assert_eq!(stored_keys(&db, FIRST_NAMED), 1, "{what}: purged");
            drop(db);
            let ro = Db::open_with_config(config(Arc::new(sim)).read_only(true)).unwrap();
            assert!(ro.keyspaces().is_err(), "{what}");
        }
    }

    /// Keys of a keyspace whose creation record was lost (recovery that
    /// skips damaged records) keep their id from being handed out again.
    #[test]
    fn an_id_with_stored_keys_is_never_reused() {
        let sim = SimVfs::new();
        let db = Db::open_with_config(config(Arc::new(sim.clone()))).unwrap();
        db.keyspace("first").unwrap().put(b"k", b"old").unwrap();
        // The catalog as if the creation of `first` were lost.
        let mut batch = WriteBatch::new();
        let catalog = Prefix::of(CATALOG);
        batch.raw_delete(catalog.as_bytes(), &name_key("first"));
        batch.raw_put(catalog.as_bytes(), &[NEXT_ID], &FIRST_NAMED.to_be_bytes());
        db.inner
            .commit(&batch, Commit::plain(Durability::AsConfigured))
            .unwrap();
        db.close().unwrap();
        let db = Db::open_with_config(
            config(Arc::new(sim)).recovery_mode(RecoveryMode::SkipAnyCorruptedRecords),
        )
        .unwrap();
        let fresh = db.keyspace("second").unwrap();
        assert!(fresh.state.id > FIRST_NAMED);
        assert_eq!(fresh.get(b"k").unwrap(), None);
    }
}
