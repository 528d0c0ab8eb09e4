//! Which priority goes next. Higher priorities are served first, and each lower level still
//! gets a bounded share while it has work, so none starves.
//!
//! Smooth weighted round robin over the levels that have an event waiting, with weights
//! critical 32, high 8, medium 2, low 1. With every level busy that is 74% / 19% / 5% / 2% of
//! the picks; a level with nothing waiting earns no credit, so a critical event arriving
//! behind any backlog of lower work is picked at once (it waits only for work already in
//! flight) and, while critical events keep coming, one low event is still taken for every
//! 32 critical ones.

use leadbus_shared::Priority;

/// Weight of each priority, in [`Priority::ALL`] order.
pub const WEIGHTS: [i64; 4] = [32, 8, 2, 1];

/// The scheduler's memory between picks.
#[derive(Debug, Default, Clone)]
pub struct Shares {
    credit: [i64; 4],
}

impl Shares {
    /// Picks among the levels with an event waiting (`waiting[i]` for [`Priority::ALL`]`[i]`);
    /// `None` when nothing waits.
    pub fn pick(&mut self, waiting: [bool; 4]) -> Option<Priority> {
        let total: i64 = (0..4).filter(|&i| waiting[i]).map(|i| WEIGHTS[i]).sum();
        if total == 0 {
            self.credit = [0; 4];
            return None;
        }
        let mut best: Option<usize> = None;
        for i in 0..4 {
            if !waiting[i] {
                // Idle levels bank nothing: no burst of stale credit later.
                self.credit[i] = 0;
                continue;
            }
            self.credit[i] += WEIGHTS[i];
            // Ties go to the higher priority (lower index).
            if best.is_none_or(|b| self.credit[i] > self.credit[b]) {
                best = Some(i);
            }
        }
        let chosen = best?;
        self.credit[chosen] -= total;
        Some(Priority::ALL[chosen])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(waiting: [bool; 4], picks: usize) -> [usize; 4] {
        let mut shares = Shares::default();
        let mut counts = [0; 4];
        for _ in 0..picks {
            let p = shares.pick(waiting).unwrap();
            counts[Priority::ALL.iter().position(|x| *x == p).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn a_new_critical_event_goes_first_whatever_backlog_is_waiting() {
        let mut shares = Shares::default();
        for _ in 0..1000 {
            assert_eq!(
                shares.pick([false, false, false, true]),
                Some(Priority::Low)
            );
        }
        assert_eq!(
            shares.pick([true, true, true, true]),
            Some(Priority::Critical)
        );
    }

    #[test]
    fn low_is_never_starved_by_a_steady_stream_of_critical() {
        let counts = run([true, false, false, true], 3300);
        assert_eq!(counts[3], 100, "{counts:?}");
        assert_eq!(counts[0], 3200);
    }

    #[test]
    fn every_busy_level_gets_its_share() {
        let counts = run([true, true, true, true], 4300);
        assert_eq!(counts, [3200, 800, 200, 100]);
    }

    #[test]
    fn nothing_waiting_picks_nothing() {
        assert_eq!(Shares::default().pick([false; 4]), None);
    }
}
