//! The engine's side of a freshness anchor: the check at open, and the
//! update after each durable commit (per the policy).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::anchor::{AnchorError, AnchorKeys, AnchorPolicy, AnchorState, FreshnessAnchor};
use crate::config::Config;
use crate::error::Error;

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

    /// Before a new database is created in `dir`: an anchor that already
    /// holds a state records a database that was here (or was pointed at
    /// this anchor). Creating an empty one in its place would accept the
    /// removal of the whole directory; refused.
    pub(crate) fn check_new(&self, dir: &Path) -> Result<(), Error> {
        let what = match self.anchor.load(&AnchorKeys::none()) {
            Ok(None) => return Ok(()),
            Ok(Some(a)) => format!(
                "the freshness anchor records database {} at commit {}, and the directory holds no database",
                a.db_id, a.commit
            ),
            Err(e) => format!(
                "the freshness anchor holds a record ({e}), and the directory holds no database"
            ),
        };
        Err(Error::Rollback {
            file: dir.to_path_buf(),
            what: format!(
                "{what}: it was removed or replaced. Restore it, or remove the anchor (or configure another) to create a new database here"
            ),
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
