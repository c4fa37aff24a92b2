//! Any bytes read as a program of engine operations — puts, deletes,
//! batches, flushes, reopens, torn crashes, key rotations, re-encryption
//! passes, snapshots, reads and scans, and (mode bit 3) named keyspaces,
//! keyspace drops, transactions, batches across keyspaces and
//! compare-and-swaps — run against a model (a `BTreeMap` per keyspace) on
//! a simulated disk: the database must always read as the model and
//! verify clean.
//!
//! With `SEALKV_FUZZ_PANIC_LOG=FILE`, a failing input's panic message and
//! the input itself (hex) are appended to FILE before the process aborts:
//! in `-fork` mode libFuzzer keeps the input but drops the message.

#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;

/// The input being run, for the panic log.
static CURRENT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fn install_panic_log() {
    let Some(path) = std::env::var_os("SEALKV_FUZZ_PANIC_LOG") else {
        return;
    };
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        use std::io::Write;
        // try_lock: the panic may come from a thread holding nothing, but
        // never wait on the lock inside a hook.
        let input = CURRENT
            .try_lock()
            .map(|g| g.iter().map(|b| format!("{b:02x}")).collect::<String>())
            .unwrap_or_default();
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            let _ = writeln!(
                f,
                "pid {} thread {:?}: {info}\ninput {input}\n",
                std::process::id(),
                std::thread::current().name()
            );
        }
        previous(info);
    }));
}

fuzz_target!(init: install_panic_log(), |data: &[u8]| {
    if let Ok(mut g) = CURRENT.lock() {
        g.clear();
        g.extend_from_slice(data);
    }
    sealkv::fuzz_ops(data);
});
