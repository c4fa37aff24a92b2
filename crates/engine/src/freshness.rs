//! The engine's side of a freshness anchor: the check at open, and the
//! update after each durable commit (per the policy).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::anchor::{AnchorError, AnchorKeys, AnchorPolicy, AnchorState, FreshnessAnchor};
use crate::config::Config;
use crate::error::Error;
use crate::keys::KeyState;
use crate::layout::KEYS_FILE;

/// Before a new database is created in `dir` with `anchor`: an anchor that
/// already holds a state records a database that was there (or was pointed
/// at this anchor). Creating an empty one in its place would accept the
/// removal of the whole directory: [`Error::Rollback`]. There is no
/// registry yet to authenticate a keyed record with, so a whole one (its
/// checksum holds) counts; an anchor that cannot be read is the I/O error,
/// and a damaged one the anchor's damage, never a rollback.
///
/// The engine runs this itself when it creates a database with an anchor;
/// a tool that creates the database elsewhere and moves the anchor into
/// place afterwards (as `import` does) runs it on the anchor it will
/// replace.
pub fn ensure_no_database_recorded(anchor: &dyn FreshnessAnchor, dir: &Path) -> Result<(), Error> {
    let what = match anchor.load(&AnchorKeys::none()) {
        Ok(None) => return Ok(()),
        Ok(Some(a)) => format!(
            "the freshness anchor records database {} at commit {}, and the directory holds no database",
            a.db_id, a.commit
        ),
        Err(AnchorError::Unauthenticated { .. }) => {
            "the freshness anchor holds a record of a database with a key, and the directory holds no database".to_string()
        }
        Err(e) => return Err(e.into()),
    };
    Err(Error::Rollback {
        file: dir.to_path_buf(),
        what: format!(
            "{what}: it was removed or replaced. Restore it, or remove the anchor (or configure another) to create a new database here"
        ),
    })
}

/// What the anchor was last told (or answered at open).
#[derive(Debug, Default)]
struct Recorded {
    state: Option<AnchorState>,
    at: Option<Instant>,
}

/// A configured freshness anchor and what it holds.
pub(crate) struct Freshness {
    anchor: Arc<dyn FreshnessAnchor>,
    policy: AnchorPolicy,
    recorded: Mutex<Recorded>,
}

impl Freshness {
    /// The configured anchor, if any.
    pub(crate) fn new(config: &Config) -> Option<Self> {
        config.anchor.as_ref().map(|anchor| Freshness {
            anchor: anchor.clone(),
            policy: config.anchor_policy,
            recorded: Mutex::new(Recorded::default()),
        })
    }

    fn recorded(&self) -> parking_lot::MutexGuard<'_, Recorded> {
        self.recorded.lock()
    }

    /// Before a new database is created in `dir`: see
    /// [`ensure_no_database_recorded`].
    pub(crate) fn check_new(&self, dir: &Path) -> Result<(), Error> {
        ensure_no_database_recorded(self.anchor.as_ref(), dir)
    }

    /// At the open of an existing database, with its key registry alone
    /// (before the page file opens): an anchor that records a newer
    /// generation than `registry`'s, or the same generation with another
    /// hash, is `Rollback` naming `KEYS`. An older
    /// registry put back after a rotation and two commits cannot open
    /// either meta page (both sealed under a data key it lacks), which
    /// without this check is `Corruption`; the anchor says what it is. An
    /// anchor that does not load here (damaged, or under another master
    /// key, as after a rekey) is left to [`Freshness::check`], which runs
    /// after the registry is checked against the page file.
    pub(crate) fn check_registry(
        &self,
        dir: &Path,
        registry: &KeyState,
        keys: &AnchorKeys,
    ) -> Result<(), Error> {
        let Ok(Some(a)) = self.anchor.load(keys) else {
            return Ok(());
        };
        if a.db_id != *registry.keyring().db_id() {
            return Ok(());
        }
        let generation = registry.generation();
        let what = if a.registry_generation > generation {
            format!(
                "the key registry (generation {generation}) is older than the freshness anchor records (generation {}): an older registry was put back",
                a.registry_generation
            )
        } else if a.registry_generation == generation
            && a.registry_hash != [0; 32]
            && a.registry_hash != registry.fingerprint()
        {
            format!(
                "the key registry (generation {generation}) is not the one the freshness anchor records at that generation: the registry of another copy of this database, or an older one"
            )
        } else {
            return Ok(());
        };
        Err(Error::Rollback {
            file: dir.join(KEYS_FILE),
            what,
        })
    }

    /// At the open of an existing database whose directory presents
    /// `present`: the anchor must not record a newer state.
    pub(crate) fn check(
        &self,
        dir: &Path,
        present: &AnchorState,
        keys: &AnchorKeys,
    ) -> Result<(), Error> {
        let loaded = self.anchor.load(keys)?;
        if let Some(a) = &loaded {
            if a.db_id != present.db_id {
                return Err(Error::Anchor(AnchorError::OtherDatabase {
                    location: format!("{:?}", self.anchor),
                    anchor: a.db_id,
                    directory: present.db_id,
                }));
            }
            if present.other_lineage(a) {
                let held = if present.lineage == [0; 16] {
                    "a page file that records no line of commits (written before lineages)"
                } else {
                    "another line of commits"
                };
                return Err(Error::Rollback {
                    file: dir.to_path_buf(),
                    what: format!(
                        "the directory holds another copy of this database ({held}) where the database its freshness anchor records (commit {}) was: a backup, a restored copy or an older copy was put in its place. Put the anchored database back, or point the anchor at this copy on purpose (a restore with the anchor does)",
                        a.commit
                    ),
                });
            }
            if let Some(why) = present.diverges_from(a) {
                return Err(Error::Rollback {
                    file: dir.to_path_buf(),
                    what: format!(
                        "the directory is not the one its freshness anchor records (commit {}, key registry generation {}): {why}. A copy of the database went its own way, or an older one was put back and written to",
                        a.commit, a.registry_generation
                    ),
                });
            }
            if !present.is_at_or_after(a) {
                return Err(Error::Rollback {
                    file: dir.to_path_buf(),
                    what: format!(
                        "the directory is older than its freshness anchor (the anchor records commit {} and key registry generation {}; the directory holds commit {} and generation {}): an older copy of the database was put back",
                        a.commit,
                        a.registry_generation,
                        present.commit,
                        present.registry_generation
                    ),
                });
            }
        }
        self.recorded().state = loaded;
        Ok(())
    }

    /// Stores `state` under `keys` now, even if the anchor holds it
    /// already (a rekey re-authenticates it under two master keys).
    pub(crate) fn record_always(&self, state: AnchorState, keys: &AnchorKeys) -> Result<(), Error> {
        let mut recorded = self.recorded();
        self.anchor.store(&state, keys)?;
        recorded.state = Some(state);
        recorded.at = Some(Instant::now());
        Ok(())
    }

    /// After a durable commit that left the directory at `state`: updates
    /// the anchor if the policy (or `force`) says so and it lags.
    pub(crate) fn record(
        &self,
        state: AnchorState,
        keys: &AnchorKeys,
        force: bool,
    ) -> Result<(), Error> {
        let mut recorded = self.recorded();
        if recorded.state == Some(state) {
            return Ok(());
        }
        if let (AnchorPolicy::Interval(every), false, Some(at)) = (self.policy, force, recorded.at)
            && at.elapsed() < every
        {
            return Ok(());
        }
        self.anchor.store(&state, keys)?;
        tracing::trace!(
            commit = state.commit,
            registry_generation = state.registry_generation,
            "freshness anchor updated"
        );
        recorded.state = Some(state);
        recorded.at = Some(Instant::now());
        Ok(())
    }
}
