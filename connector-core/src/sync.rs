//! Small synchronisation helpers shared by the runtime and the connectors.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// [`lock`] for a reader of a `std::sync::RwLock`: the guard, recovered after a panic.
///
/// ```
/// use std::sync::RwLock;
/// let m = RwLock::new(1);
/// let _ = std::panic::catch_unwind(|| {
///     let _g = m.write().unwrap();
///     panic!("a skill panicked");
/// });
/// assert_eq!(*connector_core::sync::read(&m), 1);
/// *connector_core::sync::write(&m) += 1;
/// assert_eq!(*connector_core::sync::read(&m), 2);
/// ```
pub fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// [`lock`] for a writer of a `std::sync::RwLock` (see [`read`]).
pub fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
