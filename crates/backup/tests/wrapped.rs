//! A database under an in-process [`SoftwareWrapper`]: the whole life of a
//! wrapped-key database (see `support/wrapped_lifecycle.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sealkv::crypto::{MasterKey, SoftwareWrapper};

#[path = "support/wrapped_lifecycle.rs"]
mod wrapped_lifecycle;

fn wrapper(id: &str, byte: u8) -> Arc<SoftwareWrapper> {
    Arc::new(SoftwareWrapper::new(
        id,
        MasterKey::from_bytes(&[byte; 32]).unwrap(),
    ))
}

#[test]
fn a_database_under_a_software_wrapper_lives_a_whole_life() {
    let tmp = tempfile::tempdir().unwrap();
    wrapped_lifecycle::run(
        tmp.path(),
        wrapper("first", 1),
        wrapper("second", 2),
        wrapper("first", 3),
    );
}
