//! The one retry policy of lakeops: exponential backoff with full jitter,
//! bounded by a time budget, honouring a server's `Retry-After`.
//!
//! The budget is short on purpose. Long waits belong in Step Functions: when the
//! budget runs out the caller returns a `Lakeops.Retryable` error and the state
//! machine's `Retry` waits without paying for an idle Lambda.

use rand::Rng;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upper bound of the first backoff.
    pub initial_delay: Duration,
    /// Upper bound of any single backoff.
    pub max_delay: Duration,
    /// Total time, from the first attempt, after which no new attempt starts.
    pub budget: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            budget: Duration::from_secs(20),
            max_attempts: 8,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAdvice {
    /// The fault is terminal: return it now.
    Stop,
    /// Transient: back off and try again.
    Retry,
    /// Transient, and the server said when to come back.
    RetryAfter(Duration),
}

impl RetryPolicy {
    /// A policy that never waits, for unit tests of callers.
    pub fn immediate(max_attempts: u32) -> Self {
        Self {
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            budget: Duration::from_secs(3600),
            max_attempts,
        }
    }

    /// The ceiling of the backoff before attempt `retry` (0 for the first retry).
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(20));
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }

    /// The delay before retry number `retry`: full jitter under the cap, or the
    /// server's `Retry-After` plus a little jitter so that clients spread out.
    pub fn delay(&self, retry: u32, advice: RetryAdvice, rng: &mut impl Rng) -> Duration {
        match advice {
            RetryAdvice::RetryAfter(after) => {
                let spread = self.initial_delay.as_millis() as u64;
                after + Duration::from_millis(rng.random_range(0..=spread))
            }
            _ => {
                let cap = self.backoff_cap(retry).as_millis() as u64;
                Duration::from_millis(rng.random_range(0..=cap))
            }
        }
    }

    /// Run `op` until it succeeds, `advise` says stop, or the attempts or the
    /// budget run out; the last error is returned then.
    pub async fn run<T, E, F, Fut>(
        &self,
        mut op: F,
        advise: impl Fn(&E) -> RetryAdvice,
    ) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let error = match op(attempt).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let advice = advise(&error);
            attempt += 1;
            if advice == RetryAdvice::Stop || attempt >= self.max_attempts {
                return Err(error);
            }
            let delay = self.delay(attempt - 1, advice, &mut rand::rng());
            if started.elapsed() + delay > self.budget {
                return Err(error);
            }
            tracing::debug!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                "retrying after a transient fault"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    proptest! {
        #[test]
        fn backoff_never_exceeds_its_cap(retry in 0u32..64, seed in any::<u64>()) {
            use rand::SeedableRng;
            let policy = RetryPolicy::default();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let delay = policy.delay(retry, RetryAdvice::Retry, &mut rng);
            prop_assert!(delay <= policy.max_delay);
            prop_assert!(delay <= policy.backoff_cap(retry));
        }

        #[test]
        fn retry_after_is_honoured(secs in 0u64..120, seed in any::<u64>()) {
            use rand::SeedableRng;
            let policy = RetryPolicy::default();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let delay = policy.delay(0, RetryAdvice::RetryAfter(Duration::from_secs(secs)), &mut rng);
            prop_assert!(delay >= Duration::from_secs(secs));
            prop_assert!(delay <= Duration::from_secs(secs) + policy.initial_delay);
        }
    }

    #[test]
    fn caps_grow_then_saturate() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff_cap(0), Duration::from_millis(200));
        assert_eq!(policy.backoff_cap(1), Duration::from_millis(400));
        assert_eq!(policy.backoff_cap(10), Duration::from_secs(5));
        assert_eq!(policy.backoff_cap(u32::MAX), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn retries_transient_faults_then_succeeds() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, &str> = RetryPolicy::immediate(5)
            .run(
                |attempt| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if attempt < 3 {
                            Err("throttled")
                        } else {
                            Ok(attempt)
                        }
                    }
                },
                |_| RetryAdvice::Retry,
            )
            .await;
        assert_eq!(result, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn stops_at_once_on_terminal_faults_and_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let result: Result<(), &str> = RetryPolicy::immediate(5)
            .run(
                |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async { Err("denied") }
                },
                |_| RetryAdvice::Stop,
            )
            .await;
        assert_eq!(result, Err("denied"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        calls.store(0, Ordering::SeqCst);
        let result: Result<(), &str> = RetryPolicy::immediate(3)
            .run(
                |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async { Err("throttled") }
                },
                |_| RetryAdvice::Retry,
            )
            .await;
        assert_eq!(result, Err("throttled"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_the_budget_would_be_exceeded() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(1),
            budget: Duration::from_secs(3),
            max_attempts: 100,
        };
        let calls = AtomicU32::new(0);
        let result: Result<(), &str> = policy
            .run(
                |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async { Err("slow down") }
                },
                |_| RetryAdvice::RetryAfter(Duration::from_secs(2)),
            )
            .await;
        assert!(result.is_err());
        // 0s: try, wait 2s+; 2s: try, next wait would end past 3s.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
