//! Lane leases: each lane is read by one skill process at a time, the one holding its lease
//! in the bot's JetStream key-value bucket `<bot>-lanes`, so that process can take many of
//! the lane's events at once (and acknowledge them together) and order per conversation
//! still holds.
//!
//! The bucket's entries live `cluster.redelivery` unless renewed: `member.<process>` says a
//! skill process is up (and whether it is saturated), `lane.<n>` which process holds lane
//! `n`. Every quarter of that time each process renews what it holds, counts the processes
//! that are up and not saturated, and takes free lanes up to its share or gives back those
//! above it. A process that dies stops renewing: its lanes are free `redelivery` later and
//! the others take them.
//!
//! A saturated process (an event of it waited [`crate::load::SATURATED_AFTER`] or more for
//! `max-in-flight`) gives back the lanes that wait so, and takes none, while another
//! process is not saturated. It says it is saturated until `redelivery` after it last was
//! (or last had a lane it gave away still ending), so the others take those lanes first: a
//! process that wrote `up` again at its next round would take back, below its share, the
//! lanes it had just given away. A process above its share gives back first the lanes with
//! the fewest messages in hand, so conversations under way move as little as possible.
//!
//! One more entry, `schedules`, is held the same way by one skill process at a time (the
//! first that finds it free): its holder runs the crontab skills.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::{kv, stream};
use bytes::Bytes;
use connector_core::{Bot, BoxError};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::watch;

use crate::lanes::backoff;
use crate::load::{LaneLoad, Saturation};
use crate::{Conn, Inner};

/// A lane this process holds.
struct Held {
    /// The lease's revision: the next renewal must find it unchanged.
    revision: u64,
    renewed: Instant,
    /// Set to stop the lane's task (it finishes the events it is on).
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Being given back: renewed until its task has ended, then deleted.
    releasing: bool,
    /// Given back because this process was saturated: until its task has ended, this
    /// process still counts as saturated.
    shed: bool,
    /// What its task says about its work.
    load: Arc<LaneLoad>,
}

/// What a lane's task is given: the lane, its lease's revision (the epoch that names its
/// consumer), the signal to stop, and where it says how much work it has.
pub(crate) struct Grant {
    pub(crate) lane: u16,
    pub(crate) epoch: u64,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) load: Arc<LaneLoad>,
}

/// The key of the schedules' lease: its holder runs the crontab skills.
const SCHEDULES: &str = "schedules";

/// The schedules' lease, while this process holds it.
struct Schedules {
    revision: u64,
    renewed: Instant,
}

fn lane_key(lane: u16) -> String {
    format!("lane.{lane}")
}

/// The bucket, made (or its entries' lifetime brought to `redelivery`) if needed; retried
/// with backoff until it works or the bot shuts down.
async fn bucket(inner: &Inner, conn: &Conn, bot: &Bot) -> Option<kv::Store> {
    let bucket = format!("{}-lanes", inner.settings.name);
    let ttl = inner.settings.redelivery;
    let mut attempt = 0;
    loop {
        // Made, or brought to this `redelivery` if it was there with another. (The stream
        // is written out, as the key-value convention has it, rather than made by
        // `create_key_value`, which needs a newer server's account information.)
        let config = stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: ttl,
            duplicate_window: ttl.min(Duration::from_secs(120)),
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        };
        let made: Result<kv::Store, BoxError> = async {
            if conn.js.create_stream(config.clone()).await.is_err() {
                conn.js.update_stream(config).await?;
            }
            Ok(conn.js.get_key_value(bucket.clone()).await?)
        }
        .await;
        match made {
            Ok(store) => return Some(store),
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(%bucket, error = %e, "cannot set up the lanes' leases; retrying with backoff");
                }
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(backoff(attempt)) => {}
                    _ = bot.shutting_down() => return None,
                }
            }
        }
    }
}

/// Holds lanes until shutdown, starting `start` on each lane it takes; then stops them (each
/// finishes what it is on) and gives their leases back, so the other processes take them at
/// once.
pub(crate) async fn run<S>(inner: &Arc<Inner>, conn: &Conn, bot: &Bot, start: S)
where
    S: Fn(Grant) -> tokio::task::JoinHandle<()>,
{
    let Some(kv) = bucket(inner, conn, bot).await else {
        return;
    };
    let tick = (inner.settings.redelivery / 4).max(Duration::from_millis(50));
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held: BTreeMap<u16, Held> = BTreeMap::new();
    let mut free_for: HashMap<u16, u32> = HashMap::new();
    let mut saturation = Saturation::default();
    let mut told = false;
    let mut schedules: Option<Schedules> = None;
    loop {
        tokio::select! {
            _ = bot.shutting_down() => break,
            _ = ticks.tick() => {}
        }
        if let Err(e) = hold_schedules(inner, &kv, &mut schedules).await {
            tracing::debug!(error = %e, "cannot renew or take the schedules' lease; retrying");
            if schedules
                .as_ref()
                .is_some_and(|s| s.renewed.elapsed() > inner.settings.redelivery * 3 / 4)
            {
                // As with a lane: another process may hold it now.
                inner.schedules.store(false, Ordering::Relaxed);
                schedules = None;
            }
        }
        match round(
            inner,
            &kv,
            &mut held,
            &mut free_for,
            &mut saturation,
            &start,
        )
        .await
        {
            Ok(()) => {
                if told {
                    tracing::info!("the lanes' leases can be renewed again");
                    told = false;
                }
            }
            Err(e) => {
                if !told {
                    tracing::warn!(error = %e, "cannot renew or take the lanes' leases; retrying");
                    told = true;
                }
                // Past three quarters of its lifetime a lease may be gone: stop reading it
                // (another process may take it).
                let stale: Vec<u16> = held
                    .iter()
                    .filter(|(_, h)| h.renewed.elapsed() > inner.settings.redelivery * 3 / 4)
                    .map(|(&lane, _)| lane)
                    .collect();
                for lane in stale {
                    if let Some(h) = held.remove(&lane) {
                        let _ = h.stop.send(true);
                    }
                }
            }
        }
    }
    if let Some(lease) = schedules {
        inner.schedules.store(false, Ordering::Relaxed);
        let _ = kv
            .delete_expect_revision(SCHEDULES, Some(lease.revision))
            .await;
    }
    drain(inner, &kv, held, ticks).await;
    let _ = kv.delete(format!("member.{}", inner.process)).await;
}

/// At shutdown: stops every lane (each finishes the events it is on, within the bot's
/// `runtime.shutdown-timeout`) and gives each lease back as its lane's task ends. Until then
/// the leases are still renewed: a lease that ran out while its events still ran would let
/// another process take the lane and run those events again.
async fn drain(
    inner: &Inner,
    kv: &kv::Store,
    held: BTreeMap<u16, Held>,
    mut ticks: tokio::time::Interval,
) {
    let mut revisions: BTreeMap<u16, u64> = BTreeMap::new();
    let mut ending = FuturesUnordered::new();
    for (lane, h) in held {
        let _ = h.stop.send(true);
        revisions.insert(lane, h.revision);
        ending.push(async move {
            let _ = h.task.await;
            lane
        });
    }
    let me = Bytes::from(inner.process.clone());
    ticks.reset();
    loop {
        tokio::select! {
            ended = ending.next() => {
                let Some(lane) = ended else { break };
                if let Some(revision) = revisions.remove(&lane) {
                    let _ = kv.delete_expect_revision(lane_key(lane), Some(revision)).await;
                }
            }
            _ = ticks.tick() => {
                for (&lane, revision) in revisions.iter_mut() {
                    match kv.update(lane_key(lane), me.clone(), *revision).await {
                        Ok(renewed) => *revision = renewed,
                        Err(e) => tracing::debug!(lane, error = %e, "renewing a lane's lease while its events finish"),
                    }
                }
            }
        }
    }
}

/// Renews the schedules' lease, or takes it when it is free: one skill process at a time
/// runs the crontab skills (every one keeps their times and skips them unless it holds
/// this). A process that dies stops renewing, and the lease is free `redelivery` later.
async fn hold_schedules(
    inner: &Inner,
    kv: &kv::Store,
    lease: &mut Option<Schedules>,
) -> Result<(), BoxError> {
    let me = Bytes::from(inner.process.clone());
    match lease {
        Some(held) => match kv.update(SCHEDULES, me, held.revision).await {
            Ok(revision) => {
                held.revision = revision;
                held.renewed = Instant::now();
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                inner.schedules.store(false, Ordering::Relaxed);
                *lease = None;
                tracing::warn!(
                    "the schedules' lease expired (this process was too slow to renew it); another skill process runs the crontab skills now"
                );
            }
            Err(e) => return Err(e.into()),
        },
        None => match kv.create(SCHEDULES, me).await {
            Ok(revision) => {
                *lease = Some(Schedules {
                    revision,
                    renewed: Instant::now(),
                });
                inner.schedules.store(true, Ordering::Relaxed);
                tracing::info!("this skill process runs the crontab skills now");
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}

/// One round: say this process is up, renew what it holds, give back what it should not
/// hold, take its share of the free lanes.
async fn round<S>(
    inner: &Arc<Inner>,
    kv: &kv::Store,
    held: &mut BTreeMap<u16, Held>,
    free_for: &mut HashMap<u16, u32>,
    saturation: &mut Saturation,
    start: &S,
) -> Result<(), BoxError>
where
    S: Fn(Grant) -> tokio::task::JoinHandle<()>,
{
    let partitions = inner.settings.partitions;
    let now = Instant::now();
    let saturated = inner.saturated.swap(false, Ordering::Relaxed)
        || held.values().any(|h| h.shed || h.load.waits_long(now));
    let busy = saturation.busy(saturated, now, inner.settings.redelivery);
    kv.put(
        format!("member.{}", inner.process),
        Bytes::from_static(if busy { b"busy" } else { b"up" }),
    )
    .await?;

    // Renew, all at once; a lease another process holds now is lost.
    let me = Bytes::from(inner.process.clone());
    let renewals = futures_util::future::join_all(held.iter().map(|(&lane, h)| {
        let me = me.clone();
        async move { (lane, kv.update(lane_key(lane), me, h.revision).await) }
    }))
    .await;
    for (lane, renewed) in renewals {
        match renewed {
            Ok(revision) => {
                if let Some(h) = held.get_mut(&lane) {
                    h.revision = revision;
                    h.renewed = Instant::now();
                }
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                tracing::warn!(
                    lane,
                    "the lane's lease expired (this process was too slow to renew it); another process reads it now"
                );
                if let Some(h) = held.remove(&lane) {
                    let _ = h.stop.send(true);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }

    // Lanes whose task ended (given back, or it failed): their leases go.
    let ended: Vec<u16> = held
        .iter()
        .filter(|(_, h)| h.task.is_finished())
        .map(|(&lane, _)| lane)
        .collect();
    for lane in ended {
        if let Some(h) = held.remove(&lane)
            && let Err(e) = kv
                .delete_expect_revision(lane_key(lane), Some(h.revision))
                .await
        {
            // Gone already, or another process's now: nothing to give back.
            tracing::debug!(lane, error = %e, "the lane's lease was not there to give back");
        }
    }

    // Who is up, and who holds what.
    let mut up = 0usize;
    let mut idle = 0usize;
    let mut taken = HashSet::new();
    let mut entries = kv.keys().await?;
    while let Some(key) = entries.next().await {
        let key = key?;
        if let Some(lane) = key.strip_prefix("lane.") {
            if let Ok(lane) = lane.parse::<u16>() {
                taken.insert(lane);
            }
        } else if let Some(process) = key.strip_prefix("member.") {
            up += 1;
            let not_busy = if process == inner.process {
                !busy
            } else {
                kv.get(&key).await?.as_deref() != Some(&b"busy"[..])
            };
            idle += usize::from(not_busy);
        }
    }
    for lane in 0..partitions {
        if taken.contains(&lane) {
            free_for.remove(&lane);
        } else {
            *free_for.entry(lane).or_default() += 1;
        }
    }

    let holding = held.values().filter(|h| !h.releasing).count();
    let share = match plan(partitions, holding, busy, up, idle) {
        Plan::Shed => {
            for (&lane, h) in held.iter_mut() {
                if !h.releasing && h.load.waits_long(now) {
                    tracing::info!(
                        lane,
                        "saturated (max-in-flight): the lane goes to another process"
                    );
                    h.releasing = true;
                    h.shed = true;
                    let _ = h.stop.send(true);
                }
            }
            return Ok(());
        }
        Plan::Release(extra) => {
            let loads = held
                .iter()
                .filter(|(_, h)| !h.releasing)
                .map(|(&lane, h)| (lane, h.load.unacknowledged.load(Ordering::Relaxed)));
            for lane in to_release(loads, extra) {
                if let Some(h) = held.get_mut(&lane) {
                    tracing::debug!(lane, "above this process's share: the lane goes back");
                    h.releasing = true;
                    let _ = h.stop.send(true);
                }
            }
            return Ok(());
        }
        Plan::Take { share } => share,
    };
    // Free lanes, from a place of this process's own so that processes starting together
    // try different ones first; past its share, those free for two rounds (nobody under
    // their share wanted them).
    let offset = fnv(inner.process.as_bytes()) % u64::from(partitions.max(1));
    let mut holding = holding;
    for step in 0..partitions {
        let lane = ((offset + u64::from(step)) % u64::from(partitions)) as u16;
        let Some(&rounds) = free_for.get(&lane) else {
            continue;
        };
        if held.contains_key(&lane) || (holding >= share && rounds < 2) {
            continue;
        }
        match kv.create(lane_key(lane), me.clone()).await {
            Ok(revision) => {
                let (stop, stopped) = watch::channel(false);
                let load = Arc::new(LaneLoad::default());
                let task = start(Grant {
                    lane,
                    epoch: revision,
                    stop: stopped,
                    load: load.clone(),
                });
                held.insert(
                    lane,
                    Held {
                        revision,
                        renewed: Instant::now(),
                        stop,
                        task,
                        releasing: false,
                        shed: false,
                        load,
                    },
                );
                tracing::debug!(lane, "took the lane");
                free_for.remove(&lane);
                holding += 1;
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                free_for.remove(&lane);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What a round does with the lanes, from what it saw.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Saturated while another process is not: give back the lanes that wait, take none.
    Shed,
    /// Above its share: give back this many.
    Release(usize),
    /// Take free lanes up to `share` (and, past it, those nobody else wanted).
    Take { share: usize },
}

/// The share rule: `partitions` lanes shared among the `idle` processes that are up and
/// not saturated (among all `up`, when every one is saturated); this process holds
/// `holding` and is saturated when `busy`.
fn plan(partitions: u16, holding: usize, busy: bool, up: usize, idle: usize) -> Plan {
    if busy && idle > 0 {
        return Plan::Shed;
    }
    let sharing = if busy { up } else { idle };
    let share = usize::from(partitions).div_ceil(sharing.max(1));
    if holding > share {
        Plan::Release(holding - share)
    } else {
        Plan::Take { share }
    }
}

/// Which `extra` of the lanes held (each with its messages in hand) to give back: those
/// with the fewest first, so the conversations under way stay where they are; among equals,
/// the highest-numbered.
fn to_release(lanes: impl Iterator<Item = (u16, usize)>, extra: usize) -> Vec<u16> {
    let mut lanes: Vec<(u16, usize)> = lanes.collect();
    lanes.sort_by_key(|&(lane, unacknowledged)| (unacknowledged, std::cmp::Reverse(lane)));
    lanes
        .into_iter()
        .take(extra)
        .map(|(lane, _)| lane)
        .collect()
}

/// FNV-1a.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_shared_among_the_processes_that_have_room() {
        // Alone: all 16.
        assert_eq!(plan(16, 0, false, 1, 1), Plan::Take { share: 16 });
        // A second process came: the first gives back half, the second takes up to half.
        assert_eq!(plan(16, 16, false, 2, 2), Plan::Release(8));
        assert_eq!(plan(16, 0, false, 2, 2), Plan::Take { share: 8 });
        // Shares round up, so that every lane has a holder.
        assert_eq!(plan(16, 5, false, 3, 3), Plan::Take { share: 6 });
        assert_eq!(plan(16, 7, false, 3, 3), Plan::Release(1));
        // A saturated process sheds while another has room; the others share without it.
        assert_eq!(plan(16, 8, true, 2, 1), Plan::Shed);
        assert_eq!(plan(16, 8, false, 2, 1), Plan::Take { share: 16 });
        // When all are saturated, all share.
        assert_eq!(plan(16, 8, true, 2, 0), Plan::Take { share: 8 });
        // Nobody seen (the bucket was just made): this process counts as one.
        assert_eq!(plan(4, 0, false, 0, 0), Plan::Take { share: 4 });
    }

    #[test]
    fn the_lanes_given_back_are_those_with_the_fewest_messages_in_hand() {
        let held = [(0, 3), (1, 0), (2, 7), (3, 0), (4, 1)];
        assert_eq!(to_release(held.into_iter(), 2), vec![3, 1]);
        assert_eq!(to_release(held.into_iter(), 3), vec![3, 1, 4]);
        assert_eq!(to_release(held.into_iter(), 9), vec![3, 1, 4, 0, 2]);
        assert!(to_release(held.into_iter(), 0).is_empty());
    }

    #[test]
    fn processes_start_looking_at_different_lanes() {
        let offsets: HashSet<u64> = ["host-1-a", "host-1-b", "host-2-a", "host-3-c"]
            .iter()
            .map(|p| fnv(p.as_bytes()) % 16)
            .collect();
        assert!(offsets.len() > 1, "{offsets:?}");
    }
}
