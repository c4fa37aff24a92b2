//! The model a program runs against: what every keyspace must hold.

use std::collections::BTreeMap;

use super::{collect, must};
use crate::{Db, Keyspace};

/// The named keyspaces a program uses.
pub(super) const NAMES: [&str; 3] = ["a", "b", "c"];

pub(super) type Pairs = BTreeMap<Vec<u8>, Vec<u8>>;

/// What the database must hold: the default keyspace, and each named one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Model {
    pub(super) default: Pairs,
    pub(super) named: BTreeMap<String, Pairs>,
}

impl Model {
    /// Keyspace `space` (`None`: the default one), created if missing.
    pub(super) fn space_mut(&mut self, space: Option<&str>) -> &mut Pairs {
        match space {
            None => &mut self.default,
            Some(name) => self.named.entry(name.to_string()).or_default(),
        }
    }

    pub(super) fn get(&self, space: Option<&str>, key: &[u8]) -> Option<Vec<u8>> {
        match space {
            None => self.default.get(key).cloned(),
            Some(name) => self.named.get(name)?.get(key).cloned(),
        }
    }

    /// The keyspace byte `b` picks: the default one or an existing named
    /// one.
    pub(super) fn pick(&self, b: u8) -> Option<&'static str> {
        let live: Vec<_> = NAMES
            .iter()
            .filter(|n| self.named.contains_key(**n))
            .collect();
        match usize::from(b) % (live.len() + 1) {
            0 => None,
            i => live.get(i - 1).map(|n| **n),
        }
    }
}

/// The whole database, every keyspace, must read as one of `candidates`;
/// returns the one it reads as.
pub(super) fn read_as_one_of(db: &Db, candidates: Vec<Model>) -> Model {
    let back = read_model(db);
    if !candidates.contains(&back) {
        assert_eq!(
            Some(&back),
            candidates.first(),
            "after a crash in an operation (none of the {} states allowed)",
            candidates.len()
        );
    }
    back
}

/// Handles of the named keyspaces the model holds (opening, not creating,
/// them).
pub(super) fn handles(db: &Db, model: &Model) -> BTreeMap<&'static str, Keyspace> {
    NAMES
        .iter()
        .filter(|n| model.named.contains_key(**n))
        .map(|n| (*n, must(db.keyspace(n), "keyspace")))
        .collect()
}

/// Everything the database holds, every keyspace, read forward (keys
/// checked to come in order).
pub(super) fn read_model(db: &Db) -> Model {
    let as_pairs = |it: Vec<(Vec<u8>, Vec<u8>)>| {
        assert!(
            it.windows(2).all(|w| w[0].0 < w[1].0),
            "keys come in order, once each"
        );
        it.into_iter().collect::<Pairs>()
    };
    let mut model = Model {
        default: as_pairs(collect(must(db.range::<&[u8]>(..), "range"))),
        named: BTreeMap::new(),
    };
    for name in must(db.keyspaces(), "keyspaces") {
        let ks = must(db.keyspace(&name), "keyspace");
        let pairs = as_pairs(collect(must(ks.iter(), "iterate a keyspace")));
        model.named.insert(name, pairs);
    }
    model
}

/// The whole database, every keyspace, forward, must equal the model.
pub(super) fn assert_reads_as(db: &Db, model: &Model) {
    assert_eq!(read_model(db), *model);
}

pub(super) fn pairs(model: &Pairs) -> Vec<(Vec<u8>, Vec<u8>)> {
    model.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
