//! Progress of long work (a table's snapshot, a rebuild from the database):
//! rows done out of the total, and the rate, logged often enough that a long
//! job never looks hung and rarely enough not to flood the log.
//!
//! A [`Progress`] logs at most one line every [`Progress::EVERY`] while rows
//! come in, and one final line with the total and the average rate. The
//! final line is `info` when the job was long enough to have logged progress
//! (or took at least one interval), `debug` otherwise: loading a table of a
//! few rows is not news. Times are passed in (`*_at`) so the rate limiting is
//! testable without sleeping; the plain methods use the clock.
//!
//! Tables are read in pages of bounded size (see `sources::snapshot`), so
//! rows are counted as they come in and no single call keeps a job silent.

use std::time::{Duration, Instant};

/// What one log line reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub done: u64,
    /// The expected total, when known (a count taken before the work, so
    /// `done` may end above or below it under concurrent writes).
    pub total: Option<u64>,
    /// Rows per second since the start.
    pub rate: f64,
    pub elapsed: Duration,
}

/// Progress of one job over the rows of one table.
#[derive(Debug)]
pub struct Progress {
    job: &'static str,
    table: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
    every: Duration,
    lines: u64,
}

impl Progress {
    /// The longest a running job stays silent.
    pub const EVERY: Duration = Duration::from_secs(3);

    /// Starts a job (`"snapshot"`, `"rebuild"`, ...) over `table`, now.
    pub fn start(job: &'static str, table: &str, total: Option<u64>) -> Self {
        Self::start_at(job, table, total, Instant::now(), Self::EVERY)
    }

    /// Starts a job at `now`, logging at most once per `every`.
    pub fn start_at(
        job: &'static str,
        table: &str,
        total: Option<u64>,
        now: Instant,
        every: Duration,
    ) -> Self {
        Progress {
            job,
            table: table.to_owned(),
            total,
            done: 0,
            started: now,
            last_line: now,
            every,
            lines: 0,
        }
    }

    /// Counts `rows` more done, logging a line if one is due.
    pub fn add(&mut self, rows: u64) -> Option<Line> {
        self.add_at(rows, Instant::now())
    }

    /// Counts `rows` more done at `now`; returns the line it logged, if one
    /// was due (the last one is at least `every` old).
    pub fn add_at(&mut self, rows: u64, now: Instant) -> Option<Line> {
        self.done += rows;
        if now.saturating_duration_since(self.last_line) < self.every {
            return None;
        }
        self.last_line = now;
        self.lines += 1;
        let line = self.line(now);
        let percent = self
            .total
            .filter(|t| *t > 0)
            .map(|t| {
                format!(
                    " ({:.0}%)",
                    (line.done as f64 * 100.0 / t as f64).min(100.0)
                )
            })
            .unwrap_or_default();
        tracing::info!(
            job = self.job,
            table = %self.table,
            done = line.done,
            total = line.total,
            rate = line.rate.round() as u64,
            "{} of {}: {} of {} rows{percent}, {:.0} rows/s",
            self.job,
            self.table,
            line.done,
            total_text(line.total),
            line.rate,
        );
        Some(line)
    }

    /// Rows done so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Ends the job: logs the final line (total, time, average rate).
    pub fn finish(self) -> Line {
        self.finish_at(Instant::now())
    }

    /// Ends the job at `now`; returns the final line (logged at `info` when
    /// [`Progress::is_long`], else at `debug`).
    pub fn finish_at(self, now: Instant) -> Line {
        let line = self.line(now);
        let message = format!(
            "{} of {} done: {} rows in {:.1}s, {:.0} rows/s",
            self.job,
            self.table,
            line.done,
            line.elapsed.as_secs_f64(),
            line.rate
        );
        let rate = line.rate.round() as u64;
        let elapsed_ms = line.elapsed.as_millis() as u64;
        if self.is_long(now) {
            tracing::info!(job = self.job, table = %self.table, done = line.done, total = line.total, rate, elapsed_ms, finished = true, "{message}");
        } else {
            tracing::debug!(job = self.job, table = %self.table, done = line.done, total = line.total, rate, elapsed_ms, finished = true, "{message}");
        }
        line
    }

    /// Whether the job, ending at `now`, is worth a final `info` line.
    pub fn is_long(&self, now: Instant) -> bool {
        self.lines > 0 || now.saturating_duration_since(self.started) >= self.every
    }

    fn line(&self, now: Instant) -> Line {
        let elapsed = now.saturating_duration_since(self.started);
        let secs = elapsed.as_secs_f64();
        Line {
            done: self.done,
            total: self.total,
            rate: if secs > 0.0 {
                self.done as f64 / secs
            } else {
                0.0
            },
            elapsed,
        }
    }
}

fn total_text(total: Option<u64>) -> String {
    total.map_or_else(|| "?".to_owned(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_secs(3);

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn logs_at_most_once_per_interval() {
        let t0 = Instant::now();
        let mut p = Progress::start_at("snapshot", "thread", Some(10_000), t0, EVERY);
        // Many pages within the first interval: silent.
        for i in 1..=20 {
            assert_eq!(p.add_at(100, at(t0, i * 100)), None, "page {i}");
        }
        // The interval has passed: one line, with what was done and the rate.
        let line = p.add_at(1_000, at(t0, 3_000)).expect("a line is due");
        assert_eq!(line.done, 3_000);
        assert_eq!(line.total, Some(10_000));
        assert!((line.rate - 1_000.0).abs() < 1e-6, "rate {}", line.rate);
        // The next one is due an interval after that line, not after the start.
        assert_eq!(p.add_at(1_000, at(t0, 5_999)), None);
        let line = p.add_at(1_000, at(t0, 6_000)).expect("due again");
        assert_eq!(line.done, 5_000);
    }

    #[test]
    fn a_slow_page_logs_as_soon_as_it_arrives() {
        // A single page that took minutes still gets its line when it lands.
        let t0 = Instant::now();
        let mut p = Progress::start_at("rebuild", "post", None, t0, EVERY);
        let line = p
            .add_at(50, at(t0, 120_000))
            .expect("overdue line is logged");
        assert_eq!(line.done, 50);
        assert_eq!(line.total, None);
        assert!((line.rate - 50.0 / 120.0).abs() < 1e-9);
    }

    #[test]
    fn final_line_has_the_total_and_average_rate() {
        let t0 = Instant::now();
        let mut p = Progress::start_at("snapshot", "thread", Some(4_000), t0, EVERY);
        p.add_at(2_000, at(t0, 1_000));
        p.add_at(2_000, at(t0, 2_000));
        assert_eq!(p.done(), 4_000);
        let line = p.finish_at(at(t0, 2_000));
        assert_eq!(line.done, 4_000);
        assert_eq!(line.elapsed, Duration::from_secs(2));
        assert!((line.rate - 2_000.0).abs() < 1e-6);
    }

    #[test]
    fn short_jobs_end_quietly_long_ones_loudly() {
        let t0 = Instant::now();
        let quick = Progress::start_at("snapshot", "tiny", Some(3), t0, EVERY);
        assert!(!quick.is_long(at(t0, 50)));
        let slow = Progress::start_at("snapshot", "big", Some(3), t0, EVERY);
        assert!(slow.is_long(at(t0, 3_000)));
        let mut logged = Progress::start_at("snapshot", "big", None, t0, EVERY);
        logged.add_at(1, at(t0, 3_000)).expect("a line");
        assert!(logged.is_long(at(t0, 3_000)));
    }

    #[test]
    fn zero_elapsed_has_zero_rate() {
        let t0 = Instant::now();
        let mut p = Progress::start_at("snapshot", "thread", Some(0), t0, EVERY);
        p.add_at(0, t0);
        let line = p.finish_at(t0);
        assert_eq!(line.rate, 0.0);
        assert_eq!(line.done, 0);
    }
}
