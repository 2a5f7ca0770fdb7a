//! The process allocator, and how a box asks it to hold less memory.
//!
//! automerge allocates and frees many small buffers per change. mimalloc does that in about
//! half the time of the system allocator, and with its arenas committed eagerly (its default)
//! the kernel backs them with transparent huge pages, which is a quarter of the simulator's
//! speed (a 30/4 holiday: 40 s against 62 s). A box gains nothing from that and pays for it
//! in idle memory (a 100,000-document box: 81 MB against 34 MB), so `culao up` runs with
//! eager commit off: mimalloc reads its options from the environment once, before `main`, so
//! the box sets the variable and executes itself again, keeping its process id. An operator
//! who sets the variable keeps their value.

use std::os::unix::process::CommandExt as _;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option for committing whole arenas up front.
pub const EAGER_COMMIT: &str = "MIMALLOC_ARENA_EAGER_COMMIT";

/// Makes sure a box runs with eager commit off, re-executing this process if needed. Returns
/// only if no re-execution was needed or it failed (the box then runs as it is).
pub fn lean_for_a_box() {
    if std::env::var_os(EAGER_COMMIT).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let failure = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(EAGER_COMMIT, "0")
        .exec();
    eprintln!("culao: running without {EAGER_COMMIT}=0 (re-executing failed: {failure})");
}
