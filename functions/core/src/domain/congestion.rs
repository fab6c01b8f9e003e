//! How many posts progress-push keeps in flight: found while pushing, not fixed.
//!
//! API Gateway's Management API answers each post after a network round trip and throttles the
//! account as a whole (10,000 requests/s, burst 5,000; 429 above). A fixed number of posts in
//! flight is either too few (at 20 ms a post, 64 in flight cap a push at 3,200 posts/s) or, on
//! a busy account, too many. [`InFlightLimit`] is TCP's congestion window applied to posts:
//! - **slow start**: from `initial`, one more post in flight per success (doubling each round
//!   trip) until the first throttle;
//! - **increase**: then a tenth more each round trip (at least one post), while round trips stay
//!   within twice the fastest seen (a longer one means posts queue somewhere: more in flight
//!   would only wait longer);
//! - **decrease**: a throttle (429) multiplies the window by 0.7, at most once per round trip,
//!   since one overshoot returns many 429s at once.
//!
//! The caller passes the time, so the rules are tested without a clock.

use std::time::Duration;

/// The window never shrinks below this: a push always makes progress.
pub const MIN_IN_FLIGHT: usize = 1;
/// What a throttle leaves of the window.
pub const DECREASE: f64 = 0.7;

/// Posts in flight, AIMD with slow start.
#[derive(Clone, Debug)]
pub struct InFlightLimit {
    window: f64,
    max: f64,
    /// Slow start ends at this window; unbounded until the first throttle.
    threshold: f64,
    fastest: Option<Duration>,
    smoothed: Option<Duration>,
    /// No second decrease before this time (one round trip after the last).
    hold_until: Duration,
}

impl InFlightLimit {
    /// Starts at `initial` posts in flight and never exceeds `max` (`initial == max`: a fixed
    /// window, which still shrinks on throttles).
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(MIN_IN_FLIGHT) as f64;
        Self {
            window: (initial.max(MIN_IN_FLIGHT) as f64).min(max),
            max,
            threshold: f64::INFINITY,
            fastest: None,
            smoothed: None,
            hold_until: Duration::ZERO,
        }
    }

    /// Posts that may be in flight now.
    pub fn limit(&self) -> usize {
        self.window as usize
    }

    /// A post answered (not throttled) after `round_trip`.
    pub fn on_answer(&mut self, round_trip: Duration) {
        let fastest = *self.fastest.get_or_insert(round_trip);
        self.fastest = Some(fastest.min(round_trip));
        self.smoothed = Some(self.smoothed.map_or(round_trip, |s| (s * 7 + round_trip) / 8));
        if round_trip > fastest * 2 + Duration::from_millis(1) {
            return;
        }
        let step = if self.window < self.threshold { 1.0 } else { (self.window / 10.0).max(1.0) / self.window };
        self.window = (self.window + step).min(self.max);
    }

    /// A post was throttled (429) at `now` (time since the push began).
    pub fn on_throttled(&mut self, now: Duration) {
        if now < self.hold_until {
            return;
        }
        self.window = (self.window * DECREASE).max(MIN_IN_FLIGHT as f64);
        self.threshold = self.window;
        self.hold_until = now + self.smoothed.unwrap_or(Duration::from_millis(10));
    }
}

/// A client-side cap on posts per second (`PUSH_RATE_LIMIT`), for accounts whose throttle other
/// workloads share: each post gets the next free slot, `1 / rate` apart.
#[derive(Clone, Debug)]
pub struct Pacer {
    interval: Duration,
    next: Duration,
}

impl Pacer {
    pub fn new(per_second: u32) -> Self {
        Self { interval: Duration::from_secs(1) / per_second.max(1), next: Duration::ZERO }
    }

    /// When (time since the push began) a post asked for at `now` may go.
    pub fn reserve(&mut self, now: Duration) -> Duration {
        let at = self.next.max(now);
        self.next = at + self.interval;
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(20);

    fn round_trip(limit: &mut InFlightLimit, rtt: Duration) {
        for _ in 0..limit.limit() {
            limit.on_answer(rtt);
        }
    }

    #[test]
    fn slow_start_doubles_each_round_trip_up_to_the_cap() {
        // GIVEN a window starting at 64, capped at 1,000
        let mut limit = InFlightLimit::new(64, 1000);
        // WHEN three round trips succeed at a steady 20 ms
        let windows: Vec<usize> = (0..5)
            .map(|_| {
                round_trip(&mut limit, RTT);
                limit.limit()
            })
            .collect();
        // THEN it doubles, and stops at the cap
        assert_eq!(windows, [128, 256, 512, 1000, 1000]);
    }

    #[test]
    fn a_burst_of_throttles_shrinks_the_window_once_per_round_trip() {
        // GIVEN a window of 500 that has seen 20 ms round trips
        let mut limit = InFlightLimit::new(500, 1000);
        limit.on_answer(RTT);
        let before = limit.limit();
        // WHEN 200 posts of one round trip are throttled within 5 ms
        for i in 0..200 {
            limit.on_throttled(Duration::from_millis(100) + Duration::from_micros(i * 25));
        }
        // THEN the window shrank once, by 0.7
        assert_eq!(limit.limit(), (before as f64 * DECREASE) as usize);
        // AND a throttle one round trip later shrinks it again
        limit.on_throttled(Duration::from_millis(121));
        assert_eq!(limit.limit(), (before as f64 * DECREASE * DECREASE) as usize);
    }

    #[test]
    fn after_a_throttle_the_window_grows_by_a_tenth_per_round_trip() {
        let mut limit = InFlightLimit::new(200, 1000);
        limit.on_answer(RTT);
        limit.on_throttled(Duration::from_secs(1));
        let after = limit.limit();
        round_trip(&mut limit, RTT);
        let grown = limit.limit();
        assert!(grown > after && grown <= after + after / 10 + 1, "{after} -> {grown}");
    }

    #[test]
    fn queueing_round_trips_stop_the_growth_and_throttles_never_stop_the_push() {
        // GIVEN a window that saw 20 ms round trips
        let mut limit = InFlightLimit::new(64, 1000);
        limit.on_answer(RTT);
        let before = limit.limit();
        // WHEN answers take three times as long (posts queue)
        round_trip(&mut limit, RTT * 3);
        // THEN the window does not grow
        assert_eq!(limit.limit(), before);
        // AND however many throttles come, one post may always go
        for i in 0..100 {
            limit.on_throttled(Duration::from_secs(i));
        }
        assert_eq!(limit.limit(), MIN_IN_FLIGHT);
    }

    #[test]
    fn the_pacer_spaces_posts_by_the_rate() {
        let mut pacer = Pacer::new(100);
        let slots: Vec<u128> = (0..4).map(|_| pacer.reserve(Duration::ZERO).as_millis()).collect();
        assert_eq!(slots, [0, 10, 20, 30]);
        // an idle pacer does not bank slots
        assert_eq!(pacer.reserve(Duration::from_secs(5)), Duration::from_secs(5));
    }
}
