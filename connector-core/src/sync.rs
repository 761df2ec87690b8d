//! Small synchronisation helpers shared by the runtime and the connectors.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, recovering the guard if another thread panicked while holding it.
///
/// Why: skills run user code, and a panic is caught and logged rather than ending the bot;
/// state behind a `std::sync::Mutex` (a connector's link, a registry of sockets) must stay
/// usable after such a panic instead of poisoning every later call. Use it only where the
/// protected data is valid at every await-free step, which is what a short critical section
/// around plain assignments gives.
///
/// ```
/// use std::sync::Mutex;
/// let m = Mutex::new(1);
/// let _ = std::panic::catch_unwind(|| {
///     let _g = m.lock().unwrap();
///     panic!("a skill panicked");
/// });
/// assert!(m.is_poisoned());
/// *connector_core::sync::lock(&m) += 1;
/// assert_eq!(*connector_core::sync::lock(&m), 2);
/// ```
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
