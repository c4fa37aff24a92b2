#![doc = include_str!("../README.md")]
//!
//! # The API at a glance
//!
//! - Declaring: [`Schema`] (primary key, [`Index`]es, tenant, version and
//!   upgrades); values that can be keys: [`SortKey`] ([`key`] tells each
//!   encoding).
//! - Opening: [`Collection::open`] (builds new indexes, drops old ones).
//! - Writing, each on its own or inside a transaction
//!   ([`Collection::in_tx`] gives an [`InTx`] with the same operations):
//!   [`Collection::insert`], [`Collection::upsert`],
//!   [`Collection::update`], [`Collection::delete`].
//! - Reading: [`Collection::get`], [`Collection::contains`],
//!   [`Collection::find`], [`Collection::find_unique`],
//!   [`Collection::find_in_tenant`], [`Collection::range_by`],
//!   [`Collection::count`], [`Collection::iter`] and
//!   [`Collection::range`] ([`Records`]).
//! - Sealed fields and tenants: [`Sealed`], [`Tenants`].
//! - Checking: [`Collection::verify`] ([`VerifyReport`] of
//!   [`Finding`]s).
//! - What goes wrong: [`Error`].

mod api;
mod build;
mod collection;
mod error;
pub mod key;
mod keyref;
mod layout;
mod ops;
mod record;
mod runs;
mod schema;
pub mod sealed;
pub mod tenants;
mod verify;

pub use api::InTx;
pub use collection::{BLIND_TAG_LEN, Collection};
pub use error::Error;
pub use key::SortKey;
pub use ops::Records;
pub use schema::{Index, MAX_COLLECTION_NAME_LEN, MAX_INDEX_NAME_LEN, Schema};
pub use sealed::Sealed;
pub use tenants::Tenants;
pub use verify::{Finding, VerifyReport};

/// The tour in the repository's top-level README, compiled as doctests so
/// it cannot fall behind the API. It lives here because this crate sees
/// the engine, collections and (as a dev-dependency) the archive API the
/// tour uses; `cfg(doctest)` keeps it out of every other build (and of
/// the published package's).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeTour;
