//! What this instance knows of its senders' counts, so that a sender well under their limit is
//! answered at once instead of after a round trip to Redis.
//!
//! Every hit is still counted in Redis, the same script in the same batches; a hit answered
//! here is counted in the background. The counter's answers keep the picture current: the count
//! Redis last gave for a key (which includes every instance's hits), when its window ends, and
//! this instance's hits that Redis has not counted yet.
//!
//! A hit is answered here only while the picture is fresh (Redis counted a hit on the key less
//! than [`FRESH`] ago) and the hit keeps the key at or under half its limit by it. On one
//! instance the picture is exact (every uncounted hit is its own), so the limit is exact. With
//! several instances, each one's picture misses the others' hits since Redis last answered it:
//! the limit can then be passed, by at most half of it per other instance, but only by a key
//! hit on several instances within that time, such as a sender on two devices at once. A key
//! not counted lately, whose window has ended, or whose last count was lost waits for Redis.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// How long a count from Redis may be gone by before this instance stops answering from it.
pub(crate) const FRESH: Duration = Duration::from_secs(1);

/// Past this many keys, keys whose window has ended are dropped, so that memory follows the
/// senders active in the current windows rather than every sender ever seen.
const SWEEP_ABOVE: usize = 10_000;

/// How to answer a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Allowed now; count it in the background.
    Local,
    /// Wait for Redis's count.
    Ask,
}

/// This instance's picture of its keys' counts.
#[derive(Debug)]
pub(crate) struct Allowances {
    keys: HashMap<String, Known>,
    /// The size at which the next sweep runs: twice what the last one left, so that sweeping
    /// stays a constant cost per hit however many senders are active.
    sweep_at: usize,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    /// The count Redis gave in its latest answer for this key.
    counted: u64,
    /// When that count's window ends.
    window_ends: Instant,
    /// When Redis gave that count.
    learned: Instant,
    /// Hits of this instance on their way to Redis, answered or not.
    uncounted: u64,
}

impl Default for Allowances {
    fn default() -> Self {
        Self {
            keys: HashMap::new(),
            sweep_at: SWEEP_ABOVE,
        }
    }
}

impl Allowances {
    /// Takes one hit on `key`, limited to `max` per window, and says how to answer it. Either
    /// way the hit goes to Redis, and [`Self::counted`] or [`Self::lost`] must follow.
    pub(crate) fn hit(&mut self, key: &str, max: u32, now: Instant) -> Answer {
        let Some(known) = self.keys.get_mut(key) else {
            self.keys.insert(
                key.to_owned(),
                Known {
                    counted: 0,
                    window_ends: now,
                    learned: now,
                    uncounted: 1,
                },
            );
            return Answer::Ask;
        };
        let after = known
            .counted
            .saturating_add(known.uncounted)
            .saturating_add(1);
        let within_half = after.saturating_mul(2) <= u64::from(max);
        let fresh = now < known.learned + FRESH;
        let answer = if known.window_ends > now && fresh && within_half {
            Answer::Local
        } else {
            Answer::Ask
        };
        known.uncounted += 1;
        answer
    }

    /// Redis counted a hit on `key`: the key's count is now `count`, and its window ends
    /// `ttl_ms` from now (nothing is known of the window if that is not positive).
    pub(crate) fn counted(&mut self, key: &str, count: u64, ttl_ms: i64, now: Instant) {
        let ttl = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
        if let Some(known) = self.keys.get_mut(key) {
            known.counted = count;
            known.window_ends = now + ttl;
            known.learned = now;
            known.uncounted = known.uncounted.saturating_sub(1);
        }
        self.sweep(now);
    }

    /// A hit on `key` got no answer from Redis: whether it was counted is unknown, so the
    /// picture is no longer trusted, and the key's hits wait for Redis until it counts one.
    pub(crate) fn lost(&mut self, key: &str, now: Instant) {
        if let Some(known) = self.keys.get_mut(key) {
            known.uncounted = known.uncounted.saturating_sub(1);
            known.window_ends = now;
        }
        self.sweep(now);
    }

    fn sweep(&mut self, now: Instant) {
        if self.keys.len() <= self.sweep_at {
            return;
        }
        self.keys
            .retain(|_, known| known.uncounted > 0 || known.window_ends > now);
        self.sweep_at = (self.keys.len() * 2).max(SWEEP_ABOVE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW_MS: i64 = 60_000;

    /// Hits on `key` until one must ask Redis, each counted right away as Redis would count
    /// it on one instance (starting after `before`): how many were answered here.
    fn local_run(
        allowances: &mut Allowances,
        key: &str,
        max: u32,
        before: u64,
        now: Instant,
    ) -> u64 {
        let mut local = 0;
        while allowances.hit(key, max, now) == Answer::Local {
            local += 1;
            allowances.counted(key, before + local, WINDOW_MS, now);
        }
        allowances.lost(key, now);
        local
    }

    #[test]
    fn a_key_never_counted_here_waits_for_redis() {
        let mut allowances = Allowances::default();
        assert_eq!(allowances.hit("ann", 100, Instant::now()), Answer::Ask);
    }

    #[test]
    fn a_key_is_answered_here_up_to_half_its_limit_and_no_further() {
        let mut allowances = Allowances::default();
        let now = Instant::now();
        assert_eq!(allowances.hit("ann", 20, now), Answer::Ask);
        allowances.counted("ann", 1, WINDOW_MS, now);
        assert_eq!(
            local_run(&mut allowances, "ann", 20, 1, now),
            9,
            "hits 2 to 10 of 20"
        );
        assert_eq!(
            allowances.hit("bob", 20, now),
            Answer::Ask,
            "keys are known apart"
        );
    }

    #[test]
    fn hits_not_yet_counted_use_up_the_half_like_counted_ones() {
        let mut allowances = Allowances::default();
        let now = Instant::now();
        allowances.hit("ann", 10, now);
        allowances.counted("ann", 1, WINDOW_MS, now);
        let answers: Vec<Answer> = (0..5).map(|_| allowances.hit("ann", 10, now)).collect();
        assert_eq!(
            answers,
            [
                Answer::Local,
                Answer::Local,
                Answer::Local,
                Answer::Local,
                Answer::Ask
            ],
            "1 counted + 4 on their way is half of 10"
        );
    }

    #[test]
    fn a_count_from_another_instance_ends_the_local_answers() {
        let mut allowances = Allowances::default();
        let now = Instant::now();
        allowances.hit("ann", 20, now);
        allowances.counted("ann", 1, WINDOW_MS, now);
        assert_eq!(allowances.hit("ann", 20, now), Answer::Local);
        // Meanwhile other instances counted 9 more.
        allowances.counted("ann", 11, WINDOW_MS, now);
        assert_eq!(allowances.hit("ann", 20, now), Answer::Ask);
    }

    #[test]
    fn a_window_that_has_ended_waits_for_redis_and_then_starts_afresh() {
        let mut allowances = Allowances::default();
        let start = Instant::now();
        allowances.hit("ann", 20, start);
        allowances.counted("ann", 1, 1_000, start);
        let later = start + Duration::from_secs(1);
        assert_eq!(allowances.hit("ann", 20, later), Answer::Ask);
        allowances.counted("ann", 1, WINDOW_MS, later);
        assert_eq!(local_run(&mut allowances, "ann", 20, 1, later), 9);
    }

    #[test]
    fn a_limit_of_one_always_waits_for_redis() {
        let mut allowances = Allowances::default();
        let now = Instant::now();
        allowances.hit("ann", 1, now);
        allowances.counted("ann", 0, WINDOW_MS, now);
        assert_eq!(allowances.hit("ann", 1, now), Answer::Ask);
    }

    #[test]
    fn after_a_lost_answer_the_key_waits_for_redis_until_it_counts_again() {
        let mut allowances = Allowances::default();
        let now = Instant::now();
        allowances.hit("ann", 20, now);
        allowances.counted("ann", 1, WINDOW_MS, now);
        assert_eq!(allowances.hit("ann", 20, now), Answer::Local);
        // Redis may have counted it or not: the picture could be short of the real count.
        allowances.lost("ann", now);
        assert_eq!(allowances.hit("ann", 20, now), Answer::Ask);
        allowances.counted("ann", 3, WINDOW_MS, now);
        assert_eq!(allowances.hit("ann", 20, now), Answer::Local);
    }

    #[test]
    fn a_count_older_than_fresh_waits_for_redis() {
        let mut allowances = Allowances::default();
        let start = Instant::now();
        allowances.hit("ann", 20, start);
        allowances.counted("ann", 1, WINDOW_MS, start);
        assert_eq!(
            allowances.hit("ann", 20, start + FRESH - Duration::from_millis(1)),
            Answer::Local
        );
        allowances.counted("ann", 2, WINDOW_MS, start);
        assert_eq!(
            allowances.hit("ann", 20, start + FRESH),
            Answer::Ask,
            "other instances may have counted since"
        );
    }

    #[test]
    fn ended_windows_are_swept_once_many_keys_are_known() {
        let mut allowances = Allowances::default();
        let start = Instant::now();
        for i in 0..SWEEP_ABOVE {
            let key = format!("user{i}");
            allowances.hit(&key, 20, start);
            allowances.counted(&key, 1, 1_000, start);
        }
        allowances.hit("waiting", 20, start);
        let later = start + Duration::from_secs(2);
        allowances.counted("fresh", 1, WINDOW_MS, later);
        assert_eq!(
            allowances.keys.len(),
            1,
            "only the key with a hit on its way stays"
        );
        assert!(allowances.keys.contains_key("waiting"));
    }
}
