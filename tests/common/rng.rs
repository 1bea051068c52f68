//! libtorch's random generator is global and the test harness runs tests on parallel threads:
//! a test that seeds it, draws from it, or needs two equal randomly initialised models holds
//! [`rng_lock`] for its duration, so that no other test's draw shifts the stream it replays.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

/// The lock of this test binary's tests that use libtorch's global generator (a poisoned lock,
/// left by a failed test, is taken over: the generator itself is still usable).
pub fn rng_lock() -> MutexGuard<'static, ()> {
    static RNG: Mutex<()> = Mutex::new(());
    RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
