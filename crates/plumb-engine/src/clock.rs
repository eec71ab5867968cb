//! The wall clock behind the controller's time-based decisions: when a failed sync is retried
//! (`syncPolicy.retry.backoff`) and whether a sync window is open.
//!
//! Both decisions compare wall-clock times that live in the Application's status or in an
//! AppProject (`operationState.finishedAt`, cron schedules), so they cannot use the runtime's
//! monotonic clock. [`Clock::Manual`] lets a test hold time still and move it by hand, to check
//! backoff timing without sleeping.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the controller reads the current time.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's clock.
    #[default]
    System,
    /// A clock that only moves when told to.
    Manual(ManualClock),
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Manual(manual) => manual.now(),
        }
    }
}

/// A clock shared between a test and the controller; cloning shares it.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Arc::new(Mutex::new(at)))
    }

    /// The time it shows.
    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves it forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut at = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let moved = chrono::Duration::from_std(by)
            .ok()
            .and_then(|by| at.checked_add_signed(by));
        if let Some(moved) = moved {
            *at = moved;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let manual = ManualClock::new(start);
        let clock = Clock::Manual(manual.clone());
        assert_eq!(clock.now(), start);
        manual.advance(Duration::from_secs(90));
        assert_eq!(clock.now(), start + chrono::Duration::seconds(90));
    }
}
