//! The board between the lane fetchers and the scheduler: one small queue per lane (tenant and
//! priority), and per priority a round of the lanes that have something queued.
//!
//! - Between priorities the scheduler's [`Shares`] decide, among the levels that have work and
//!   room under their cap on work in flight.
//! - Within a priority, lanes take turns, one event each: a tenant with a deep backlog gets one
//!   event per turn like any other, so another tenant's event waits behind at most one event of
//!   each busy tenant of its priority, never behind a backlog.
//! - Each level may fill only part of `max_concurrent` ([`LEVEL_CAP_DIVISORS`]): lower work
//!   never takes every slot, so a critical event finds one free at once and runs beside a
//!   bounded amount of other work rather than behind it.
//!
//! - A backlog yields to busier higher levels: while a higher level is busy (it had an event
//!   taken in the last [`YIELD_WINDOW`]), a level whose queue has stood non-empty for
//!   [`BACKLOG_AFTER`] may fill only a `yield_divisor`th of its cap (the setting
//!   `backlog_yield_divisor`). The backlog then keeps
//!   fewer events in flight beside the higher ones, so it takes less of the CPU they share, and
//!   drains at full width again once the higher level is quiet. Lower work that keeps up (its
//!   queue empties now and then) is never held back this way.
//!
//! Each lane queues at most `per_lane` events; a fetcher waits for room, which bounds the
//! prefetch of the whole service at `per_lane` times the number of lanes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leadbus_shared::Priority;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::shares::Shares;

/// A level may have at most `max_concurrent / divisor` events in flight (at least one):
/// critical all of them, high half, medium a quarter, low an eighth.
pub const LEVEL_CAP_DIVISORS: [usize; 4] = [1, 2, 4, 8];

/// How long after a level last had an event taken the levels below it count it as busy.
pub(super) const YIELD_WINDOW: Duration = Duration::from_millis(500);

/// How long a level's queue must stand non-empty before the level counts as a backlog.
pub(super) const BACKLOG_AFTER: Duration = Duration::from_secs(1);

/// The board is closed; nothing more is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Queues of every lane, shared by the fetchers (pushing) and the scheduler (taking).
#[derive(Debug)]
pub struct Board<T> {
    state: Mutex<State<T>>,
    wake: Notify,
    per_lane: usize,
    caps: [usize; 4],
    /// While a higher level is busy, a backlog's cap is divided by this (at least one event).
    yield_divisor: usize,
}

#[derive(Debug)]
struct State<T> {
    levels: [Level<T>; 4],
    shares: Shares,
    closed: bool,
}

#[derive(Debug)]
struct Level<T> {
    /// Each lane's queue, with the room it holds.
    lanes: Vec<VecDeque<(T, OwnedSemaphorePermit)>>,
    /// Lanes with something queued, in turn order; each appears once.
    turn: VecDeque<usize>,
    in_flight: usize,
    /// When an event of this level was last taken.
    last_taken: Option<Instant>,
    /// Since when this level has had something queued without a break.
    queued_since: Option<Instant>,
}

impl<T> Default for Level<T> {
    fn default() -> Self {
        Level {
            lanes: Vec::new(),
            turn: VecDeque::new(),
            in_flight: 0,
            last_taken: None,
            queued_since: None,
        }
    }
}

/// A fetcher's end of one lane.
#[derive(Debug)]
pub struct LaneHandle<T> {
    board: Arc<Board<T>>,
    level: usize,
    lane: usize,
    room: Arc<Semaphore>,
}

/// One event taken off the board; dropping it frees its level's place in flight.
#[derive(Debug)]
pub struct Taken<T> {
    board: Arc<Board<T>>,
    /// The level it was taken from.
    pub priority: Priority,
    /// The event.
    pub item: T,
}

impl<T> Drop for Taken<T> {
    fn drop(&mut self) {
        let level = level_of(self.priority);
        if let Ok(mut state) = self.board.state.lock() {
            let in_flight = &mut state.levels[level].in_flight;
            *in_flight = in_flight.saturating_sub(1);
        }
        // The scheduler may be waiting for room at this level.
        self.board.wake.notify_one();
    }
}

fn level_of(priority: Priority) -> usize {
    Priority::ALL
        .iter()
        .position(|p| *p == priority)
        .unwrap_or(0)
}

impl<T> Board<T> {
    /// A board whose lanes queue at most `per_lane` events, for a scheduler running at most
    /// `max_concurrent` events at once, whose backlogs keep a `yield_divisor`th of their cap
    /// while a higher level is busy.
    pub fn new(per_lane: usize, max_concurrent: usize, yield_divisor: usize) -> Arc<Self> {
        let caps = LEVEL_CAP_DIVISORS.map(|d| (max_concurrent / d).max(1));
        Arc::new(Board {
            state: Mutex::new(State {
                levels: Default::default(),
                shares: Shares::default(),
                closed: false,
            }),
            wake: Notify::new(),
            per_lane: per_lane.max(1),
            caps,
            yield_divisor: yield_divisor.max(1),
        })
    }

    /// Events a level may have in flight, in [`Priority::ALL`] order.
    pub fn caps(&self) -> [usize; 4] {
        self.caps
    }

    /// Adds a lane at `priority`.
    pub fn add_lane(self: &Arc<Self>, priority: Priority) -> LaneHandle<T> {
        let level = level_of(priority);
        let lane = match self.state.lock() {
            Ok(mut state) => {
                let lanes = &mut state.levels[level].lanes;
                lanes.push(VecDeque::new());
                lanes.len() - 1
            }
            // A poisoned board is a closed one; pushes to this lane fail.
            Err(_) => usize::MAX,
        };
        LaneHandle {
            board: Arc::clone(self),
            level,
            lane,
            room: Arc::new(Semaphore::new(self.per_lane)),
        }
    }

    /// Takes the next event: the level by shares among those with work and room, the lane by
    /// turn within it. `None` when nothing can be taken now.
    pub fn try_take(self: &Arc<Self>) -> Result<Option<Taken<T>>, Closed> {
        let mut state = self.state.lock().map_err(|_| Closed)?;
        if state.closed {
            return Err(Closed);
        }
        let caps = self.caps_now(&state, Instant::now());
        let eligible = [0, 1, 2, 3]
            .map(|i| !state.levels[i].turn.is_empty() && state.levels[i].in_flight < caps[i]);
        let Some(priority) = state.shares.pick(eligible) else {
            return Ok(None);
        };
        let level = &mut state.levels[level_of(priority)];
        let Some(lane) = level.turn.pop_front() else {
            return Ok(None);
        };
        let Some((item, room)) = level.lanes.get_mut(lane).and_then(VecDeque::pop_front) else {
            return Ok(None);
        };
        drop(room);
        if level.lanes.get(lane).is_some_and(|q| !q.is_empty()) {
            level.turn.push_back(lane);
        }
        level.in_flight += 1;
        level.last_taken = Some(Instant::now());
        if level.turn.is_empty() {
            level.queued_since = None;
        }
        Ok(Some(Taken {
            board: Arc::clone(self),
            priority,
            item,
        }))
    }

    /// Each level's cap at `now`: its own, or a `yield_divisor`th of it for a backlog while a
    /// higher level is busy.
    fn caps_now(&self, state: &State<T>, now: Instant) -> [usize; 4] {
        let mut caps = self.caps;
        let mut higher_busy = false;
        for (i, cap) in caps.iter_mut().enumerate() {
            let level = &state.levels[i];
            let backlog = level
                .queued_since
                .is_some_and(|at| now.saturating_duration_since(at) >= BACKLOG_AFTER);
            if higher_busy && backlog {
                *cap = (*cap / self.yield_divisor).max(1);
            }
            higher_busy |= level.in_flight > 0
                || level
                    .last_taken
                    .is_some_and(|at| now.saturating_duration_since(at) < YIELD_WINDOW);
        }
        caps
    }

    /// Waits until an event can be taken, or the board closes.
    pub async fn take(self: &Arc<Self>) -> Result<Taken<T>, Closed> {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Some(taken) = self.try_take()? {
                return Ok(taken);
            }
            woken.await;
        }
    }

    /// Closes the board and hands back everything still queued.
    pub fn close(&self) -> Vec<T> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        state.closed = true;
        let mut left = Vec::new();
        for level in &mut state.levels {
            level.turn.clear();
            for lane in &mut level.lanes {
                left.extend(lane.drain(..).map(|(item, _room)| item));
            }
        }
        drop(state);
        self.wake.notify_waiters();
        left
    }
}

impl<T> LaneHandle<T> {
    /// Queues `item` on this lane, waiting while the lane is full. Fails once the board is
    /// closed, handing the item back.
    pub async fn push(&self, item: T) -> Result<(), (T, Closed)> {
        let Ok(room) = Arc::clone(&self.room).acquire_owned().await else {
            return Err((item, Closed));
        };
        {
            let Ok(mut state) = self.board.state.lock() else {
                return Err((item, Closed));
            };
            if state.closed {
                return Err((item, Closed));
            }
            let level = &mut state.levels[self.level];
            let Some(queue) = level.lanes.get_mut(self.lane) else {
                return Err((item, Closed));
            };
            let was_empty = queue.is_empty();
            queue.push_back((item, room));
            if was_empty {
                if level.turn.is_empty() {
                    level.queued_since = Some(Instant::now());
                }
                level.turn.push_back(self.lane);
            }
        }
        self.board.wake.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tenants_of_one_priority_take_turns_whatever_their_backlog() {
        let board = Board::new(100, 100, 4);
        let noisy = board.add_lane(Priority::Medium);
        let quiet = board.add_lane(Priority::Medium);
        for i in 0..50 {
            noisy.push(format!("noisy-{i}")).await.unwrap();
        }
        quiet.push("quiet-0".to_owned()).await.unwrap();
        quiet.push("quiet-1".to_owned()).await.unwrap();
        let mut order = Vec::new();
        for _ in 0..5 {
            let taken = board.try_take().unwrap().unwrap();
            order.push(taken.item.clone());
        }
        assert_eq!(
            order,
            ["noisy-0", "quiet-0", "noisy-1", "quiet-1", "noisy-2"]
        );
    }

    #[tokio::test]
    async fn lower_levels_leave_room_in_flight_for_critical() {
        let board = Board::new(1000, 16, 4);
        assert_eq!(board.caps(), [16, 8, 4, 2]);
        let low = board.add_lane(Priority::Low);
        let critical = board.add_lane(Priority::Critical);
        for i in 0..100 {
            low.push(i).await.unwrap();
        }
        // Low fills its two places and no more.
        let a = board.try_take().unwrap().unwrap();
        let b = board.try_take().unwrap().unwrap();
        assert_eq!((a.priority, b.priority), (Priority::Low, Priority::Low));
        assert!(board.try_take().unwrap().is_none());
        // A critical event is taken at once.
        critical.push(1000).await.unwrap();
        let c = board.try_take().unwrap().unwrap();
        assert_eq!((c.priority, c.item), (Priority::Critical, 1000));
        // Low keeps up so far: finishing one lets the next in.
        drop(a);
        let a = board.try_take().unwrap().unwrap();
        assert_eq!(a.priority, Priority::Low);
        // Once low's queue has stood for a while it is a backlog: while critical is busy it may
        // hold only a quarter of its two places (one). It holds two, and finishing one does not
        // let the next in.
        board.backdate_queue(Priority::Low, BACKLOG_AFTER);
        drop(a);
        assert!(board.try_take().unwrap().is_none());
        drop(b);
        let d = board.try_take().unwrap().unwrap();
        assert_eq!(d.priority, Priority::Low);
        assert!(board.try_take().unwrap().is_none());
    }

    #[tokio::test]
    async fn lower_work_regains_its_full_cap_once_the_higher_level_is_quiet() {
        let board = Board::new(1000, 32, 4);
        let low = board.add_lane(Priority::Low);
        for i in 0..100 {
            low.push(i).await.unwrap();
        }
        board.backdate_queue(Priority::Low, BACKLOG_AFTER);
        assert_eq!(board.caps_at(Instant::now()), [32, 16, 8, 4]);
        let high = board.add_lane(Priority::High);
        high.push(7).await.unwrap();
        let mut taken = Vec::new();
        while let Some(t) = board.try_take().unwrap() {
            taken.push(t);
        }
        // The high event, and one low event (a quarter of four) beside it.
        let high_taken = taken
            .iter()
            .filter(|t| t.priority == Priority::High)
            .count();
        assert_eq!((high_taken, taken.len()), (1, 2));
        taken.clear();
        // Medium has nothing queued: its cap stays whole.
        assert_eq!(board.caps_at(Instant::now()), [32, 16, 8, 1]);
        let later = Instant::now() + YIELD_WINDOW + Duration::from_millis(1);
        assert_eq!(board.caps_at(later), [32, 16, 8, 4]);
    }

    #[tokio::test]
    async fn the_yield_divisor_sets_how_far_a_backlog_steps_back() {
        for (divisor, low_cap) in [(1, 12), (4, 3), (12, 1)] {
            let board = Board::new(1000, 96, divisor);
            let low = board.add_lane(Priority::Low);
            for i in 0..50 {
                low.push(i).await.unwrap();
            }
            board.backdate_queue(Priority::Low, BACKLOG_AFTER);
            let critical = board.add_lane(Priority::Critical);
            critical.push(99).await.unwrap();
            let mut taken = Vec::new();
            while let Some(t) = board.try_take().unwrap() {
                taken.push(t);
            }
            let lows = taken.iter().filter(|t| t.priority == Priority::Low).count();
            assert_eq!(lows, low_cap, "divisor {divisor}");
        }
    }

    impl<T> Board<T> {
        fn caps_at(&self, now: Instant) -> [usize; 4] {
            let state = self.state.lock().unwrap();
            self.caps_now(&state, now)
        }

        /// Makes `priority`'s queue look as if it had stood for `by` already.
        fn backdate_queue(&self, priority: Priority, by: Duration) {
            let mut state = self.state.lock().unwrap();
            let level = &mut state.levels[level_of(priority)];
            level.queued_since = level.queued_since.and_then(|at| at.checked_sub(by));
        }
    }

    #[tokio::test]
    async fn a_full_lane_makes_its_fetcher_wait_and_close_hands_everything_back() {
        let board = Board::new(2, 10, 4);
        let lane = board.add_lane(Priority::High);
        lane.push(1).await.unwrap();
        lane.push(2).await.unwrap();
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), lane.push(3)).await;
        assert!(third.is_err(), "a third event found room in a lane of two");
        let taken = board.take().await.unwrap();
        assert_eq!(taken.item, 1);
        lane.push(3).await.unwrap();
        let mut left = board.close();
        left.sort();
        assert_eq!(left, [2, 3]);
        assert!(board.try_take().is_err());
        assert!(lane.push(4).await.is_err());
    }
}
