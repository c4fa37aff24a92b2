//! [`Collection::verify`]: every index entry points at a live record that
//! lists it, and every record has exactly the entries its values give.

use serde::Serialize;
use serde::de::DeserializeOwned;

use sealkv::Transaction;

use crate::collection::{Active, Collection};
use crate::error::Error;
use crate::key::SortKey;
use crate::layout::{self, INDEX_TAG, RECORD_TAG};
use crate::record;

/// One inconsistency [`Collection::verify`] found. Keys are primary-key
/// encodings; no finding carries a record's value or an index value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// A record that is not in the record format, does not decode as the
    /// collection's type, or holds a sealed field that does not open (one
    /// moved from another record, or changed).
    DamagedRecord {
        /// Its primary key.
        key: Vec<u8>,
    },
    /// A record lists an entry that its index does not hold (or holds for
    /// another record).
    MissingEntry {
        /// The index.
        index: String,
        /// The record's primary key.
        key: Vec<u8>,
    },
    /// A record has no entry in a built index although it has a value
    /// for it.
    Unindexed {
        /// The index.
        index: String,
        /// The record's primary key.
        key: Vec<u8>,
    },
    /// A record's entry does not hold the value the record gives now.
    StaleEntry {
        /// The index.
        index: String,
        /// The record's primary key.
        key: Vec<u8>,
    },
    /// An index entry whose record is missing or does not list it.
    DanglingEntry {
        /// The index.
        index: String,
        /// The primary key it names.
        key: Vec<u8>,
    },
    /// Entries of an index the stored schema does not hold.
    UnknownIndex {
        /// The index id.
        id: u32,
    },
}

/// What [`Collection::verify`] checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Index entries checked.
    pub entries: u64,
    /// What is wrong (empty: records and indexes agree).
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

impl<T, K> Collection<T, K>
where
    T: Serialize + DeserializeOwned + 'static,
    K: SortKey + 'static,
{
    /// Checks, on one snapshot, that every record's index entries exist
    /// and hold the values its fields give (blind ones as tags under the
    /// record's key), and that every index entry names a live record that
    /// lists it. Reads every record and every entry; writers go on.
    /// Records whose tenant was erased are checked as far as their keys
    /// allow (their blind values can no longer be computed).
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let mut tx = self.inner.db.begin_transaction()?;
        self.check_generation(&mut tx)?;
        let mut report = VerifyReport::default();
        self.verify_records(&mut tx, &mut report)?;
        self.verify_entries(&mut tx, &mut report)?;
        Ok(report)
    }

    fn verify_records(&self, tx: &mut Transaction, report: &mut VerifyReport) -> Result<(), Error> {
        let ks = &self.inner.ks;
        let records = tx
            .prefix_in(ks, [RECORD_TAG])?
            .collect::<Result<Vec<_>, _>>()?;
        for (rkey, stored) in records {
            report.records += 1;
            let pk = rkey.get(1..).unwrap_or_default().to_vec();
            let damaged = || Finding::DamagedRecord { key: pk.clone() };
            let Some(split) = record::split(&stored) else {
                report.findings.push(damaged());
                continue;
            };
            for (id, value) in &split.head.entries {
                let Some(index) = self.inner.indexes.iter().find(|i| i.id == *id) else {
                    continue; // a dropped index: its entries are deleted by prefix
                };
                let unique = index.decl.spec.unique;
                let holder = tx.get_in(ks, layout::entry_key(*id, unique, value, &pk))?;
                if holder.as_deref() != Some(&pk[..]) {
                    report.findings.push(Finding::MissingEntry {
                        index: index.decl.name.clone(),
                        key: pk.clone(),
                    });
                }
            }
            let record = match self.decode(&pk, &stored, Some(tx)) {
                Ok(r) => r,
                Err(
                    Error::Codec { .. }
                    | Error::Corruption { .. }
                    | Error::Db(sealkv::Error::Field(_)),
                ) => {
                    report.findings.push(damaged());
                    continue;
                }
                Err(e) => return Err(e),
            };
            for index in &self.inner.indexes {
                let Some(expected) = self.expected_value(tx, index, &record)? else {
                    continue;
                };
                let listed = split.head.entries.iter().find(|(i, _)| *i == index.id);
                match listed {
                    None => report.findings.push(Finding::Unindexed {
                        index: index.decl.name.clone(),
                        key: pk.clone(),
                    }),
                    Some((_, v)) if *v != expected => report.findings.push(Finding::StaleEntry {
                        index: index.decl.name.clone(),
                        key: pk.clone(),
                    }),
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// The value `record` should have in `index`; `None` when it cannot be
    /// computed any more (a blind value under a destroyed key).
    fn expected_value(
        &self,
        tx: &mut Transaction,
        index: &Active<T>,
        record: &T,
    ) -> Result<Option<Vec<u8>>, Error> {
        let tenant = self.tenant_of(record)?;
        let key = self.key_for(tx, tenant.as_deref(), false)?.map(|(k, _)| k);
        if index.decl.spec.blind && key.is_none() {
            return Ok(None);
        }
        match self.index_value(index, record, key) {
            Ok(v) => Ok(Some(v)),
            Err(Error::Db(sealkv::Error::KeyDestroyed(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn verify_entries(&self, tx: &mut Transaction, report: &mut VerifyReport) -> Result<(), Error> {
        let ks = &self.inner.ks;
        let entries = tx
            .prefix_in(ks, [INDEX_TAG])?
            .collect::<Result<Vec<_>, _>>()?;
        let mut unknown: Vec<u32> = Vec::new();
        for (key, pk) in entries {
            report.entries += 1;
            let Some(id) = key
                .get(1..5)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
            else {
                unknown.push(u32::MAX);
                continue;
            };
            let Some(index) = self.inner.indexes.iter().find(|i| i.id == id) else {
                unknown.push(id);
                continue;
            };
            let rest = key.get(5..).unwrap_or_default();
            let value = if index.decl.spec.unique {
                Some(rest)
            } else {
                rest.strip_suffix(&pk[..])
            };
            let listed = match (value, tx.get_in(ks, layout::record_key(&pk))?) {
                (Some(value), Some(stored)) => record::split(&stored).is_some_and(|s| {
                    s.head
                        .entries
                        .iter()
                        .any(|(i, v)| *i == id && v.as_slice() == value)
                }),
                _ => false,
            };
            if !listed {
                report.findings.push(Finding::DanglingEntry {
                    index: index.decl.name.clone(),
                    key: pk,
                });
            }
        }
        unknown.dedup();
        report
            .findings
            .extend(unknown.into_iter().map(|id| Finding::UnknownIndex { id }));
        Ok(())
    }
}
