//! The child: opens the database and writes batches until it is killed,
//! telling the parent on stdout what it is doing.
//!
//! Lines (each written in one `write(2)`, well under the pipe's atomic
//! size): `open`; `begin write B` before batch `B` is handed to the
//! engine and `ack B` only after `Db::write` returned `Ok`; `begin flush` /
//! `end flush`, `begin rotate` / `end rotate` and `begin reencrypt` /
//! `step` / `end reencrypt` around the operations the parent aims at.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use sealkv::Db;

use crate::mode::Mode;
use crate::rng::Rng;
use crate::workload::batch;

/// What the parent tells a child.
#[derive(Debug)]
pub(crate) struct ChildArgs {
    pub(crate) dir: PathBuf,
    pub(crate) mode: Mode,
    /// The first batch to write.
    pub(crate) next: u64,
    pub(crate) seed: u64,
}

/// After this many batches a child stops by itself (the parent always
/// kills it long before; a child that stops is a finding).
const MAX_BATCHES: u64 = 200_000;

fn say(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

/// Runs until killed; returns only on an error (or after `MAX_BATCHES`).
pub(crate) fn run(args: &ChildArgs) -> Result<(), String> {
    let config = args.mode.config(&args.dir)?;
    let db = Db::open_with_config(config).map_err(|e| format!("open: {e}"))?;
    say("open")?;
    let mut rng = Rng::new(args.seed);
    let sealed = args.mode.sealed();
    let mut b = args.next;
    while b < args.next + MAX_BATCHES {
        let roll = rng.below(1000);
        if roll < 25 {
            say("begin flush")?;
            db.flush().map_err(|e| format!("flush: {e}"))?;
            say("end flush")?;
        } else if sealed && roll < 40 {
            say("begin rotate")?;
            db.rotate_data_key()
                .map_err(|e| format!("rotate_data_key: {e}"))?;
            say("end rotate")?;
        } else if sealed && roll < 47 {
            say("begin reencrypt")?;
            let mut step = |_: &sealkv::ReencryptProgress| match say("step") {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            };
            db.reencrypt(&mut step)
                .map_err(|e| format!("reencrypt: {e}"))?;
            say("end reencrypt")?;
        } else {
            say(&format!("begin write {b}"))?;
            db.write(&batch(b))
                .map_err(|e| format!("write of batch {b}: {e}"))?;
            say(&format!("ack {b}"))?;
            b += 1;
        }
    }
    std::mem::forget(db);
    Ok(())
}
