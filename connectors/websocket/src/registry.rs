//! Socket ids, reservations, and the sharded map of open sockets' outboxes.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

use connector_core::sync::{read, write};

use super::outbox::Outbox;

/// A socket id: 128 bits from the operating system's CSPRNG, written like a uuid
/// (`8-4-4-4-12` lowercase hex) so clients that expect opsdroid's uuid shape keep working.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct SocketId(u128);

impl SocketId {
    /// A fresh, unguessable id.
    pub(crate) fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(Self(u128::from_le_bytes(bytes)))
    }

    /// Parses the uuid-like form; anything else is no id of ours. Every reply parses its
    /// target, so the 32 digits are decoded eight at a time, each eight as one 64-bit word
    /// (a table lookup per digit cost about 270 instructions a reply).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        // A fixed-size array: the loads below need no bounds checks.
        let b: &[u8; 36] = text.as_bytes().try_into().ok()?;
        if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return None;
        }
        let eight = |at: usize| u64::from_le_bytes(*b[at..].first_chunk::<8>().unwrap_or(&[0; 8]));
        let four = |at: usize| {
            u64::from(u32::from_le_bytes(
                *b[at..].first_chunk::<4>().unwrap_or(&[0; 4]),
            ))
        };
        let high = u64::from(hex8(eight(0))?) << 32 | u64::from(hex8(four(9) | four(14) << 32)?);
        let low = u64::from(hex8(four(19) | four(24) << 32)?) << 32 | u64::from(hex8(eight(28))?);
        Some(Self(u128::from(high) << 64 | u128::from(low)))
    }
}

/// `byte` in every byte of a word.
const fn splat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// The bytes of `x` (each below 0x80) that lie in `lo..=hi`: 0x80 in each such byte.
fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    // Adding 0x80 - lo sets a byte's top bit exactly when it is >= lo; adding 0x7f - hi
    // exactly when it is > hi. Bytes below 0x80 never carry into their neighbour.
    (x.wrapping_add(splat(0x80 - lo)) & !x.wrapping_add(splat(0x7f - hi))) & splat(0x80)
}

/// Eight hex digits (the first in the lowest byte, as read from memory) as their value, the
/// first digit the most significant; `None` if any byte is not a hex digit.
#[inline]
fn hex8(x: u64) -> Option<u32> {
    if x & splat(0x80) != 0 {
        return None;
    }
    let digits = in_range(x, b'0', b'9');
    // Setting 0x20 makes `A`-`F` into `a`-`f` (and nothing else into them).
    let letters = in_range(x | splat(0x20), b'a', b'f');
    if digits | letters != splat(0x80) {
        return None;
    }
    // A digit's value is its low four bits; a letter's, those plus 9.
    let nibbles = (x & splat(0x0f)) + (letters >> 7) * 9;
    // Pack: pairs of nibbles into bytes, bytes into 16-bit lanes, lanes into the result.
    let pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let quads = ((pairs << 8) | (pairs >> 16)) & 0x0000_ffff_0000_ffff;
    Some((((quads << 16) | (quads >> 32)) & 0xffff_ffff) as u32)
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }
}

/// Ids are random already: hashing them again would only cost time. Addresses only need
/// their bits spread.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = (n as u64) ^ ((n >> 64) as u64);
    }
    /// An address (a key of the map by address): spread over the hash, its low bits being
    /// alignment, the same for all.
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdMap<V> = HashMap<SocketId, V, BuildHasherDefault<IdHasher>>;

/// Open sockets by the address of their id's text: the one `Arc<str>` that a socket's events
/// carry as their target, and so do the replies to them.
type AddressMap = HashMap<usize, Arc<Outbox>, BuildHasherDefault<IdHasher>>;

/// The length of an id's text.
const ID_LEN: usize = 36;

/// Shards of the open-socket map: a reply looks its socket up under a read lock of one shard,
/// so replies to different sockets do not contend.
const SHARDS: usize = 16;
/// How many expired, purged ids are remembered to answer 408 rather than 400.
const EXPIRED_MEMORY: usize = 4096;

/// Whether a reservation can be used.
pub(crate) enum Claim {
    /// Claimed (the slot now counts as an open socket), or, when only checked, still valid.
    Ready(Option<SlotGuard>),
    /// No such reservation, or it was used already.
    Unknown,
    /// The reservation was older than `connection-timeout` (it is now dropped).
    Expired,
}

#[derive(Default)]
struct Pending {
    reserved: IdMap<Instant>,
    expired: HashSet<SocketId, BuildHasherDefault<IdHasher>>,
}

/// Reservations and open sockets.
pub(crate) struct Registry {
    shards: Box<[RwLock<IdMap<Arc<Outbox>>>]>,
    /// The same sockets by the address of their id's text: a reply finds its socket without
    /// decoding the id (about 230 instructions a reply).
    addresses: Box<[RwLock<AddressMap>]>,
    open: AtomicUsize,
    pending: Mutex<Pending>,
    timeout: Duration,
}

impl Registry {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            addresses: (0..SHARDS).map(|_| RwLock::default()).collect(),
            open: AtomicUsize::new(0),
            pending: Mutex::default(),
            timeout,
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        connector_core::sync::lock(&self.pending)
    }

    fn shard(&self, id: SocketId) -> &RwLock<IdMap<Arc<Outbox>>> {
        &self.shards[(id.0 as usize) % SHARDS]
    }

    /// Reserves a slot, unless reservations plus open sockets already reach `max`. Expired
    /// reservations are purged first, so they free their slot.
    pub(crate) fn reserve(&self, max: usize) -> Result<Option<SocketId>, getrandom::Error> {
        let mut pending = self.pending();
        let now = Instant::now();
        let timeout = self.timeout;
        let Pending { reserved, expired } = &mut *pending;
        reserved.retain(|id, created| {
            let keep = now.duration_since(*created) <= timeout;
            if !keep {
                if expired.len() >= EXPIRED_MEMORY {
                    expired.clear();
                }
                expired.insert(*id);
            }
            keep
        });
        if reserved.len() + self.open.load(Ordering::Acquire) >= max {
            return Ok(None);
        }
        let id = SocketId::random()?;
        reserved.insert(id, now);
        Ok(Some(id))
    }

    /// Checks a reservation and, with `take`, claims it: it then works no more, and its slot
    /// counts as an open socket until the returned guard is dropped.
    pub(crate) fn claim(self: &Arc<Self>, id: SocketId, take: bool) -> Claim {
        let mut pending = self.pending();
        let Some(&created) = pending.reserved.get(&id) else {
            return if pending.expired.remove(&id) {
                Claim::Expired
            } else {
                Claim::Unknown
            };
        };
        if created.elapsed() > self.timeout {
            pending.reserved.remove(&id);
            return Claim::Expired;
        }
        if !take {
            return Claim::Ready(None);
        }
        pending.reserved.remove(&id);
        // Counted before the reservation's lock is released: a concurrent `reserve` sees the
        // slot either as reserved or as open, never as free.
        self.open.fetch_add(1, Ordering::AcqRel);
        Claim::Ready(Some(SlotGuard {
            registry: self.clone(),
            id,
            text: None,
        }))
    }

    /// Runs `f` on the outbox of open socket `id`, under a read lock of its shard.
    pub(crate) fn with<R>(&self, id: SocketId, f: impl FnOnce(&Outbox) -> R) -> Option<R> {
        read(self.shard(id)).get(&id).map(|outbox| f(outbox))
    }

    /// Runs `f` on the outbox of the open socket whose id is `target`: found by the text's
    /// address when `target` is the socket's own id text (what its events carry, and their
    /// replies with them), else by decoding it (an id a skill kept or typed).
    pub(crate) fn with_target<R>(&self, target: &str, f: impl FnOnce(&Outbox) -> R) -> Option<R> {
        if target.len() != ID_LEN {
            return None;
        }
        let address = target.as_ptr() as usize;
        // A registered text stays allocated while it is in the map (its guard holds it), so
        // no other text can have its address: a match is that socket's.
        let addresses = read(self.address_shard(address));
        if let Some(outbox) = addresses.get(&address) {
            return Some(f(outbox));
        }
        drop(addresses);
        self.with(SocketId::parse(target)?, f)
    }

    fn address_shard(&self, address: usize) -> &RwLock<AddressMap> {
        &self.addresses[(address >> 4) % SHARDS]
    }

    /// Every open socket's outbox.
    pub(crate) fn all(&self) -> Vec<Arc<Outbox>> {
        let mut out = Vec::with_capacity(self.open.load(Ordering::Acquire));
        for shard in self.shards.iter() {
            out.extend(read(shard).values().cloned());
        }
        out
    }

    fn write_shard(&self, id: SocketId) -> RwLockWriteGuard<'_, IdMap<Arc<Outbox>>> {
        write(self.shard(id))
    }
}

/// An open socket's slot: registers its outbox, and frees the slot when dropped (the client
/// closed, vanished, or the upgrade failed).
pub(crate) struct SlotGuard {
    registry: Arc<Registry>,
    id: SocketId,
    /// The socket's id text, once registered (in both maps): held so that its address stays
    /// the socket's while it is in the address map.
    text: Option<Arc<str>>,
}

impl SlotGuard {
    pub(crate) fn id(&self) -> SocketId {
        self.id
    }

    /// Makes the socket reachable by replies: by its id, and by the address of `text`, its
    /// id's text as its events carry it.
    pub(crate) fn register(&mut self, outbox: Arc<Outbox>, text: Arc<str>) {
        debug_assert_eq!(*text, self.id.to_string());
        let address = text.as_ptr() as usize;
        write(self.registry.address_shard(address)).insert(address, outbox.clone());
        self.registry.write_shard(self.id).insert(self.id, outbox);
        self.text = Some(text);
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(text) = self.text.take() {
            let address = text.as_ptr() as usize;
            write(self.registry.address_shard(address)).remove(&address);
            if let Some(outbox) = self.registry.write_shard(self.id).remove(&self.id) {
                outbox.mark_gone();
            }
        }
        self.registry.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain decoder the word-at-a-time one must agree with.
    fn reference(text: &str) -> Option<SocketId> {
        let b = text.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return None;
        }
        let digits: String = text.chars().filter(|&c| c != '-').collect();
        if digits.len() != 32 || !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(&digits, 16).ok().map(SocketId)
    }

    #[test]
    fn parsing_agrees_with_a_plain_decoder_for_every_byte_at_every_place() {
        let known = "0123a567-89ab-cdef-0A1B-2C3D4E5F6f77";
        assert_eq!(
            SocketId::parse(known),
            Some(SocketId(0x0123_a567_89ab_cdef_0a1b_2c3d_4e5f_6f77))
        );
        for i in 0..known.len() {
            for byte in 0..=255u8 {
                let mut text = known.as_bytes().to_vec();
                text[i] = byte;
                let Ok(text) = std::str::from_utf8(&text) else {
                    continue;
                };
                assert_eq!(SocketId::parse(text), reference(text), "{text:?}");
            }
        }
        for _ in 0..1000 {
            let id = SocketId::random().unwrap();
            assert_eq!(SocketId::parse(&id.to_string()), Some(id));
            assert_eq!(SocketId::parse(&id.to_string().to_uppercase()), Some(id));
        }
    }

    #[test]
    fn a_socket_is_found_by_its_own_text_by_a_copy_and_by_an_upper_case_copy_until_it_closes() {
        let registry = Arc::new(Registry::new(Duration::from_secs(60)));
        let open = |registry: &Arc<Registry>| {
            let id = registry.reserve(10).unwrap().unwrap();
            let Claim::Ready(Some(mut guard)) = registry.claim(id, true) else {
                panic!("the reservation is claimable");
            };
            let outbox = Arc::new(Outbox::new(8));
            let text: Arc<str> = Arc::from(id.to_string());
            guard.register(outbox.clone(), text.clone());
            (guard, outbox, text)
        };
        let (guard, outbox, text) = open(&registry);
        let (_other_guard, other, other_text) = open(&registry);
        let found = |target: &str| registry.with_target(target, |o| o as *const Outbox);
        let this = Some(Arc::as_ptr(&outbox));
        let by_address = |text: &Arc<str>| {
            let address = text.as_ptr() as usize;
            read(registry.address_shard(address)).contains_key(&address)
        };
        assert!(
            by_address(&text),
            "the socket's own text is in the map by address"
        );
        // A copy: the same id at another address.
        let copy = text.to_string();
        // By address (the socket's own text), by decoding (a copy, either case).
        assert_eq!(found(&text), this);
        assert_eq!(found(&copy), this);
        assert_eq!(found(&text.to_uppercase()), this);
        assert_eq!(found(&other_text), Some(Arc::as_ptr(&other)));
        assert_eq!(found("not-a-socket"), None);
        // A prefix of the registered text starts at its address but is not its id.
        assert_eq!(found(&text[..ID_LEN - 1]), None);
        drop(guard);
        assert_eq!(found(&text), None, "closed: not found by its address");
        assert!(!by_address(&text), "closed: gone from the map by address");
        assert_eq!(found(&copy), None, "closed: not found by its id");
        assert_eq!(found(&other_text), Some(Arc::as_ptr(&other)));
    }

    #[test]
    fn ids_round_trip_and_look_like_uuids() {
        let id = SocketId::random().unwrap();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text.matches('-').count(), 4);
        assert_eq!(SocketId::parse(&text), Some(id));
        assert_eq!(SocketId::parse(&text.to_uppercase()), Some(id));
        assert_ne!(SocketId::random().unwrap(), id);
        assert_eq!(SocketId::parse("not-a-real-socket"), None);
        assert_eq!(
            SocketId(0x0123_4567_89ab_cdef_0011_2233_4455_6677).to_string(),
            "01234567-89ab-cdef-0011-223344556677"
        );
        let known = "01234567-89ab-cdef-0011-223344556677";
        assert_eq!(
            SocketId::parse(known),
            Some(SocketId(0x0123_4567_89ab_cdef_0011_2233_4455_6677))
        );
        // A wrong byte anywhere, or a dash out of place, is no id.
        for i in 0..known.len() {
            let mut bad = known.as_bytes().to_vec();
            bad[i] = if bad[i] == b'-' { b'0' } else { b'g' };
            assert_eq!(
                SocketId::parse(std::str::from_utf8(&bad).unwrap()),
                None,
                "{i}"
            );
        }
    }

    #[test]
    fn slots_count_reservations_and_open_sockets() {
        let reg = Arc::new(Registry::new(Duration::from_secs(60)));
        let a = reg.reserve(2).unwrap().unwrap();
        let _b = reg.reserve(2).unwrap().unwrap();
        assert!(reg.reserve(2).unwrap().is_none());
        let Claim::Ready(Some(guard)) = reg.claim(a, true) else {
            panic!("claim failed")
        };
        assert!(matches!(reg.claim(a, true), Claim::Unknown));
        assert!(reg.reserve(2).unwrap().is_none());
        drop(guard);
        assert!(reg.reserve(2).unwrap().is_some());
    }

    #[test]
    fn expired_reservations_free_their_slot_and_answer_expired() {
        let reg = Arc::new(Registry::new(Duration::ZERO));
        let a = reg.reserve(1).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        // Purged when slots are counted: the slot is free again.
        let b = reg.reserve(1).unwrap().unwrap();
        assert!(matches!(reg.claim(a, true), Claim::Expired));
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(reg.claim(b, true), Claim::Expired));
        assert!(matches!(reg.claim(b, true), Claim::Unknown));
    }
}
