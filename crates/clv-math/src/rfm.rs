//! Per-customer RFM summaries with exactly the semantics of `lifetimes` 0.11.3
//! `summary_data_from_transaction_data` and `calibration_and_holdout_data`.
//!
//! Time is carried as microseconds since 2000-01-01 00:00 (PostgreSQL's epoch) and calendar days
//! as days since that epoch, so the SQL layer can hand over `date`/`timestamp` values unchanged.
//!
//! The state is a list of purchase periods with their summed amounts rather than running totals:
//! frequency needs *distinct* periods, and keeping them is what lets partial states from parallel
//! workers (or stored summaries) be merged exactly.

use crate::error::{ClvError, Result};
use crate::interrupt;
use smallvec::SmallVec;

/// Purchase periods of one customer. Most customers have few, so they live inline in the state:
/// the aggregate touches one allocation per customer instead of two (a cache miss per
/// transaction saved, see bench/README.md).
/// Inline room for 8 periods, as in 0.5.0: with it the whole aggregate state (`RfmState` behind
/// the SQL layer's 16-byte datum prefix) fits a 256-byte palloc chunk; one more inline period would
/// round it up to 512 bytes (the SQL layer asserts the size). A customer with more purchase periods
/// keeps them on the heap (one more allocation, and a cache miss per transaction).
pub type Periods = SmallVec<[(i32, f64); 8]>;

pub const USECS_PER_DAY: i64 = 86_400_000_000;
/// numpy's `timedelta64(1, 'M')` (average Gregorian month), which lifetimes divides by for
/// `freq='M'`.
pub const DAYS_PER_MONTH: f64 = 30.436875;
pub const DAYS_PER_YEAR: f64 = 365.2425;

/// How transactions are merged into purchase periods (pandas `to_period(freq)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    Day,
    /// pandas 'W' = weeks ending Sunday, so a period starts on Monday (as ISO weeks do).
    Week,
    Month,
}

/// The unit recency, tenure and durations are reported in (lifetimes' `freq` divided by
/// `freq_multiplier`: days, weeks = 7 days, months = 30.436875 days, years = 365.2425 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Day,
    Week,
    Month,
    Year,
}

pub const ACCEPTED_PERIOD_UNITS: &str = "'day', 'week', 'month'";
pub const ACCEPTED_TIME_UNITS: &str = "'day', 'week', 'month', 'year'";

fn normalise(unit: &str) -> String {
    let u = unit.trim().to_ascii_lowercase();
    u.strip_suffix('s').map(str::to_owned).unwrap_or(u)
}

impl PeriodUnit {
    pub fn parse(unit: &str) -> Result<Self> {
        match normalise(unit).as_str() {
            "day" | "d" => Ok(PeriodUnit::Day),
            "week" | "w" => Ok(PeriodUnit::Week),
            "month" | "m" => Ok(PeriodUnit::Month),
            _ => Err(ClvError::InvalidParameter(format!(
                "unknown period unit \"{unit}\"; accepted units are {ACCEPTED_PERIOD_UNITS}"
            ))),
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Result<Self> {
        [PeriodUnit::Day, PeriodUnit::Week, PeriodUnit::Month]
            .get(c as usize)
            .copied()
            .ok_or_else(|| ClvError::Corrupt(format!("unknown period unit code {c}")))
    }

    pub fn name(self) -> &'static str {
        match self {
            PeriodUnit::Day => "day",
            PeriodUnit::Week => "week",
            PeriodUnit::Month => "month",
        }
    }

    /// The first day of the period that contains `day`.
    pub fn period_start(self, day: i32) -> i32 {
        match self {
            PeriodUnit::Day => day,
            // 2000-01-01 was a Saturday: (day + 5) mod 7 is 0 on Mondays.
            PeriodUnit::Week => day - (day + 5).rem_euclid(7),
            PeriodUnit::Month => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, m, 1)
            }
        }
    }

    /// Number of whole periods between two period starts (pandas `Period` subtraction `.n`).
    pub fn periods_between(self, from: i32, to: i32) -> i64 {
        match self {
            PeriodUnit::Day => (to - from) as i64,
            PeriodUnit::Week => ((to - from) / 7) as i64,
            PeriodUnit::Month => {
                let (y0, m0, _) = civil_from_days(from);
                let (y1, m1, _) = civil_from_days(to);
                (y1 - y0) as i64 * 12 + (m1 as i64 - m0 as i64)
            }
        }
    }
}

impl TimeUnit {
    pub fn parse(unit: &str) -> Result<Self> {
        match normalise(unit).as_str() {
            "day" | "d" => Ok(TimeUnit::Day),
            "week" | "w" => Ok(TimeUnit::Week),
            "month" | "m" => Ok(TimeUnit::Month),
            "year" | "y" => Ok(TimeUnit::Year),
            _ => Err(ClvError::InvalidParameter(format!(
                "unknown time unit \"{unit}\"; accepted units are {ACCEPTED_TIME_UNITS}"
            ))),
        }
    }

    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Day => 1.0,
            TimeUnit::Week => 7.0,
            TimeUnit::Month => DAYS_PER_MONTH,
            TimeUnit::Year => DAYS_PER_YEAR,
        }
    }

    fn matches(self, p: PeriodUnit) -> bool {
        matches!(
            (self, p),
            (TimeUnit::Day, PeriodUnit::Day)
                | (TimeUnit::Week, PeriodUnit::Week)
                | (TimeUnit::Month, PeriodUnit::Month)
        )
    }
}

impl From<PeriodUnit> for TimeUnit {
    fn from(p: PeriodUnit) -> Self {
        match p {
            PeriodUnit::Day => TimeUnit::Day,
            PeriodUnit::Week => TimeUnit::Week,
            PeriodUnit::Month => TimeUnit::Month,
        }
    }
}

/// Howard Hinnant's days-from-civil, shifted to the 2000-01-01 epoch.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y } as i64;
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146097 + doe - 719468 - 10957) as i32
}

pub fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days as i64 + 10957 + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// The calendar day (days since 2000-01-01) of a timestamp in microseconds.
pub fn day_of(usecs: i64) -> i32 {
    usecs.div_euclid(USECS_PER_DAY) as i32
}

/// Everything needed to summarise one customer; also the serialized form of the aggregate state
/// and of the stored `rfm_summary` value.
#[derive(Debug, Clone, PartialEq)]
#[repr(C)]
pub struct RfmState {
    // Fields every transaction reads or writes come first, so they share the state's first cache
    // line (the aggregate's per-row cost is dominated by cache misses on the state; see
    // bench/README.md); the period list follows, the holdout fields last.
    /// Last calendar day of the observation (calibration end when `holdout_end` is set).
    pub end_day: i32,
    pub unit: PeriodUnit,
    /// Last calendar day of the holdout window; `None` for a plain summary.
    pub holdout_end_day: Option<i32>,
    pub n_transactions: u64,
    pub total_amount: f64,
    /// First and last included transaction, microseconds since 2000-01-01.
    pub first_ts: i64,
    pub last_ts: i64,
    /// (period start day, summed amount) of the purchase periods; unsorted until `normalise`.
    pub periods: Periods,
    /// Holdout: distinct period starts, raw transaction count and amount sum.
    pub holdout_periods: Vec<i32>,
    pub holdout_transactions: u64,
    pub holdout_amount: f64,
}

/// Why a transaction was not counted (the SQL layer documents and tests each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Calibration,
    Holdout,
    /// After the observation (or holdout) end: ignored, as lifetimes does.
    Ignored,
}

impl RfmState {
    /// `end_day`: observation end (calibration end in holdout mode) as a calendar day.
    pub fn new(unit: PeriodUnit, end_day: i32, holdout_end_day: Option<i32>) -> Result<Self> {
        if let Some(h) = holdout_end_day {
            if h < end_day {
                return Err(ClvError::InvalidParameter(
                    "observation end must not be before the calibration end".into(),
                ));
            }
        }
        Ok(RfmState {
            unit,
            end_day,
            holdout_end_day,
            periods: Periods::new(),
            n_transactions: 0,
            total_amount: 0.0,
            first_ts: i64::MAX,
            last_ts: i64::MIN,
            holdout_periods: Vec::new(),
            holdout_transactions: 0,
            holdout_amount: 0.0,
        })
    }

    /// Add one transaction at `usecs` (microseconds since 2000-01-01 in the day-deciding time zone)
    /// with `amount` (NULL amounts are passed as 0, as pandas' groupby-sum treats NaN).
    #[inline]
    pub fn add(&mut self, usecs: i64, amount: f64) -> Result<Added> {
        if !amount.is_finite() {
            return Err(ClvError::InvalidParameter(format!(
                "transaction amount must be a finite number, got {amount}"
            )));
        }
        let day = day_of(usecs);
        match self.holdout_end_day {
            None => {
                // lifetimes keeps every transaction whose *period* is not after the observation
                // end's period, so with week/month units the whole last period counts.
                let p = self.unit.period_start(day);
                if p > self.unit.period_start(self.end_day) {
                    return Ok(Added::Ignored);
                }
                self.add_calibration(p, usecs, amount);
                Ok(Added::Calibration)
            }
            Some(h) => {
                if day <= self.end_day {
                    self.add_calibration(self.unit.period_start(day), usecs, amount);
                    Ok(Added::Calibration)
                } else if day <= h {
                    let p = self.unit.period_start(day);
                    if self.holdout_periods.last() != Some(&p) {
                        self.holdout_periods.push(p);
                    }
                    self.holdout_transactions += 1;
                    self.holdout_amount += amount;
                    Ok(Added::Holdout)
                } else {
                    Ok(Added::Ignored)
                }
            }
        }
    }

    #[inline]
    fn add_calibration(&mut self, period: i32, usecs: i64, amount: f64) {
        // Transactions usually arrive in time order, so merging with the last period keeps the
        // list short without a hash lookup; out-of-order input is merged in `normalise`.
        match self.periods.last_mut() {
            Some((p, a)) if *p == period => *a += amount,
            _ => self.periods.push((period, amount)),
        }
        self.n_transactions += 1;
        self.total_amount += amount;
        self.first_ts = self.first_ts.min(usecs);
        self.last_ts = self.last_ts.max(usecs);
    }

    /// Merge another partial state of the same customer (parallel workers, re-aggregation).
    pub fn merge(&mut self, other: &RfmState) -> Result<()> {
        if self.unit != other.unit
            || self.end_day != other.end_day
            || self.holdout_end_day != other.holdout_end_day
        {
            return Err(ClvError::InvalidParameter(
                "cannot combine RFM summaries with different units or observation windows".into(),
            ));
        }
        self.periods.extend_from_slice(&other.periods);
        self.n_transactions += other.n_transactions;
        self.total_amount += other.total_amount;
        self.first_ts = self.first_ts.min(other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
        self.holdout_periods
            .extend_from_slice(&other.holdout_periods);
        self.holdout_transactions += other.holdout_transactions;
        self.holdout_amount += other.holdout_amount;
        Ok(())
    }

    /// Sort periods and merge duplicates. Idempotent; summaries are stored normalised.
    pub fn normalise(&mut self) {
        if !self.periods.windows(2).all(|w| w[0].0 < w[1].0) {
            interrupt::sort_unstable_by(&mut self.periods, |a, b| a.0.cmp(&b.0));
            let mut out = Periods::with_capacity(self.periods.len());
            for &(p, a) in &self.periods {
                match out.last_mut() {
                    Some((q, b)) if *q == p => *b += a,
                    _ => out.push((p, a)),
                }
            }
            self.periods = out;
        }
        if !self.holdout_periods.windows(2).all(|w| w[0] < w[1]) {
            interrupt::sort_unstable_by(&mut self.holdout_periods, |a, b| a.cmp(b));
            self.holdout_periods.dedup();
        }
    }

    /// True when no transaction up to the (calibration) end was seen: the customer has no
    /// summary (lifetimes drops such customers).
    pub fn is_empty(&self) -> bool {
        self.periods.is_empty()
    }

    /// Compute the lifetimes fields. The state must be normalised and non-empty.
    pub fn summary(&self, unit: TimeUnit) -> Summary {
        debug_assert!(!self.periods.is_empty());
        let first = self.periods[0].0;
        let last = self.periods[self.periods.len() - 1].0;
        let end = self.unit.period_start(self.end_day);
        let d = unit.days();
        let frequency = (self.periods.len() - 1) as f64;
        let monetary_value = if self.periods.len() > 1 {
            self.periods[1..].iter().map(|p| p.1).sum::<f64>() / frequency
        } else {
            0.0
        };
        // Gaps between consecutive purchase periods, for the inter-purchase statistics.
        let (gap_mean, gap_cv) = if self.periods.len() >= 2 {
            let gaps: Vec<f64> = self
                .periods
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) as f64 / d)
                .collect();
            let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let cv = if gaps.len() >= 2 && mean > 0.0 {
                let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
                Some(var.sqrt() / mean)
            } else {
                None
            };
            (Some(mean), cv)
        } else {
            (None, None)
        };
        let holdout = self.holdout_end_day.map(|h| {
            let (cal, hold) = (
                self.unit.period_start(self.end_day),
                self.unit.period_start(h),
            );
            // lifetimes: duration_holdout = (Period(obs_end) - Period(cal_end)).n / freq_multiplier
            let duration = if unit.matches(self.unit) {
                self.unit.periods_between(cal, hold) as f64
            } else {
                (hold - cal) as f64 / d
            };
            Holdout {
                frequency: self.holdout_periods.len() as f64,
                monetary_value: if self.holdout_periods.is_empty() {
                    0.0
                } else {
                    self.holdout_amount / self.holdout_periods.len() as f64
                },
                monetary_value_per_transaction: if self.holdout_transactions > 0 {
                    self.holdout_amount / self.holdout_transactions as f64
                } else {
                    0.0
                },
                total_amount: self.holdout_amount,
                duration,
                transactions: self.holdout_transactions,
            }
        });
        Summary {
            frequency,
            recency: (last - first) as f64 / d,
            tenure: (end - first) as f64 / d,
            monetary_value,
            n_transactions: self.n_transactions,
            total_amount: self.total_amount,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            interpurchase_mean: gap_mean,
            interpurchase_cv: gap_cv,
            holdout,
        }
    }

    // ---- binary form ------------------------------------------------------------------------
    // Layout (little endian): magic "RFM", version u8, unit u8, flags u8 (bit0 = holdout),
    // end_day i32, [holdout_end_day i32], n_transactions u64, total f64, first_ts i64, last_ts i64,
    // n_periods u32, periods (i32, f64)*, and with holdout: n u32, periods i32*, tx u64, amount f64.
    // The version byte lets later releases read values stored by this one.

    pub const VERSION: u8 = 1;

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(48 + self.periods.len() * 12 + self.holdout_periods.len() * 4);
        out.extend_from_slice(b"RFM");
        out.push(Self::VERSION);
        out.push(self.unit.code());
        out.push(self.holdout_end_day.is_some() as u8);
        out.extend_from_slice(&self.end_day.to_le_bytes());
        if let Some(h) = self.holdout_end_day {
            out.extend_from_slice(&h.to_le_bytes());
        }
        out.extend_from_slice(&self.n_transactions.to_le_bytes());
        out.extend_from_slice(&self.total_amount.to_le_bytes());
        out.extend_from_slice(&self.first_ts.to_le_bytes());
        out.extend_from_slice(&self.last_ts.to_le_bytes());
        out.extend_from_slice(&(self.periods.len() as u32).to_le_bytes());
        for &(p, a) in &self.periods {
            out.extend_from_slice(&p.to_le_bytes());
            out.extend_from_slice(&a.to_le_bytes());
        }
        if self.holdout_end_day.is_some() {
            out.extend_from_slice(&(self.holdout_periods.len() as u32).to_le_bytes());
            for p in &self.holdout_periods {
                out.extend_from_slice(&p.to_le_bytes());
            }
            out.extend_from_slice(&self.holdout_transactions.to_le_bytes());
            out.extend_from_slice(&self.holdout_amount.to_le_bytes());
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { b: bytes, i: 0 };
        if r.take(3)? != b"RFM" {
            return Err(ClvError::Corrupt("not an rfm_summary value".into()));
        }
        let version = r.u8()?;
        if version != Self::VERSION {
            return Err(ClvError::Corrupt(format!(
                "rfm_summary version {version} is not supported by this release"
            )));
        }
        let unit = PeriodUnit::from_code(r.u8()?)?;
        let flags = r.u8()?;
        let end_day = r.i32()?;
        let holdout_end_day = if flags & 1 == 1 { Some(r.i32()?) } else { None };
        let n_transactions = r.u64()?;
        let total_amount = r.f64()?;
        let first_ts = r.i64()?;
        let last_ts = r.i64()?;
        let n = r.u32()? as usize;
        if n > bytes.len() / 12 {
            return Err(ClvError::Corrupt(
                "rfm_summary period count exceeds its size".into(),
            ));
        }
        let mut periods = Periods::with_capacity(n);
        for _ in 0..n {
            periods.push((r.i32()?, r.f64()?));
        }
        let (mut holdout_periods, mut holdout_transactions, mut holdout_amount) =
            (Vec::new(), 0, 0.0);
        if holdout_end_day.is_some() {
            let n = r.u32()? as usize;
            if n > bytes.len() / 4 {
                return Err(ClvError::Corrupt(
                    "rfm_summary holdout count exceeds its size".into(),
                ));
            }
            holdout_periods = (0..n).map(|_| r.i32()).collect::<Result<_>>()?;
            holdout_transactions = r.u64()?;
            holdout_amount = r.f64()?;
        }
        if r.i != bytes.len() {
            return Err(ClvError::Corrupt("trailing bytes in rfm_summary".into()));
        }
        Ok(RfmState {
            unit,
            end_day,
            holdout_end_day,
            periods,
            n_transactions,
            total_amount,
            first_ts,
            last_ts,
            holdout_periods,
            holdout_transactions,
            holdout_amount,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

macro_rules! read_le {
    ($($name:ident: $t:ty),*) => {$(
        fn $name(&mut self) -> Result<$t> {
            let s = self.take(std::mem::size_of::<$t>())?;
            Ok(<$t>::from_le_bytes(s.try_into().expect("length checked")))
        }
    )*};
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = self
            .b
            .get(self.i..self.i + n)
            .ok_or_else(|| ClvError::Corrupt("truncated rfm_summary".into()))?;
        self.i += n;
        Ok(s)
    }
    read_le!(u8: u8, i32: i32, u32: u32, u64: u64, i64: i64, f64: f64);
}

/// The lifetimes fields of one customer plus descriptive statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub frequency: f64,
    pub recency: f64,
    pub tenure: f64,
    pub monetary_value: f64,
    pub n_transactions: u64,
    pub total_amount: f64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub interpurchase_mean: Option<f64>,
    pub interpurchase_cv: Option<f64>,
    pub holdout: Option<Holdout>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Holdout {
    /// Distinct purchase periods in the holdout window (lifetimes' `frequency_holdout`).
    pub frequency: f64,
    /// Mean spend per holdout purchase period: total holdout spend / `frequency`, the same
    /// per-period convention as the calibration `monetary_value` and PyMC-Marketing's fix of
    /// lifetimes' `calibration_and_holdout_data` (0 without holdout purchases).
    pub monetary_value: f64,
    /// Mean of the raw holdout transaction amounts, as lifetimes 0.11.3 computes
    /// `monetary_value_holdout` (it does not merge transactions of the same period there, so its
    /// figure does not match its own `frequency_holdout`).
    pub monetary_value_per_transaction: f64,
    /// Total holdout spend.
    pub total_amount: f64,
    pub duration: f64,
    pub transactions: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn day(y: i32, m: u32, d: u32) -> i32 {
        days_from_civil(y, m, d)
    }

    fn at(y: i32, m: u32, d: u32) -> i64 {
        day(y, m, d) as i64 * USECS_PER_DAY
    }

    #[test]
    fn calendar_round_trip_and_epoch() {
        assert_eq!(day(2000, 1, 1), 0);
        assert_eq!(day(1997, 9, 30), -823);
        assert_eq!(civil_from_days(-823), (1997, 9, 30));
        for d in -200_000..200_000 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 1997-09-30 was a Tuesday.
        assert_eq!(
            PeriodUnit::Week.period_start(day(1997, 9, 30)),
            day(1997, 9, 29)
        );
        assert_eq!(
            PeriodUnit::Week.period_start(day(1997, 9, 28)),
            day(1997, 9, 22)
        );
        assert_eq!(
            PeriodUnit::Month.period_start(day(1997, 9, 30)),
            day(1997, 9, 1)
        );
        assert_eq!(
            PeriodUnit::Month.periods_between(day(1997, 9, 1), day(1998, 6, 1)),
            9
        );
    }

    #[test]
    fn units_parse_and_reject() {
        assert_eq!(PeriodUnit::parse(" Weeks ").unwrap(), PeriodUnit::Week);
        assert_eq!(TimeUnit::parse("year").unwrap(), TimeUnit::Year);
        let e = PeriodUnit::parse("fortnight").unwrap_err();
        assert!(e.to_string().contains("'day', 'week', 'month'"), "{e}");
        assert!(TimeUnit::parse("").is_err());
    }

    #[test]
    fn lifetimes_semantics_on_a_small_example() {
        // Customer 1 of CDNOW: 1997-01-01 29.33, 1997-01-18 29.73, 1997-08-02 14.96,
        // 1997-12-12 (after the end, ignored); observation end 1997-09-30.
        let mut s = RfmState::new(PeriodUnit::Day, day(1997, 9, 30), None).unwrap();
        assert_eq!(s.add(at(1997, 1, 1), 29.33).unwrap(), Added::Calibration);
        s.add(at(1997, 1, 18), 29.73).unwrap();
        s.add(at(1997, 8, 2), 14.96).unwrap();
        assert_eq!(s.add(at(1997, 12, 12), 26.48).unwrap(), Added::Ignored);
        s.normalise();
        let w = s.summary(TimeUnit::Week);
        assert_eq!(w.frequency, 2.0);
        assert!((w.recency - 213.0 / 7.0).abs() < 1e-12); // 30.43 in the reference file
        assert!((w.tenure - 272.0 / 7.0).abs() < 1e-12); // 38.86
        assert!((w.monetary_value - (29.73 + 14.96) / 2.0).abs() < 1e-12); // 22.35
        assert_eq!(w.n_transactions, 3);
        assert!((w.total_amount - 74.02).abs() < 1e-9);
        assert_eq!(w.interpurchase_mean, Some(213.0 / 2.0 / 7.0));
    }

    #[test]
    fn same_period_transactions_merge_and_order_does_not_matter() {
        let end = day(2020, 3, 31);
        let tx = [
            (at(2020, 1, 6) + 5, 10.0),
            (at(2020, 1, 6) + 99, 5.0),
            (at(2020, 1, 20), 7.0),
            (at(2020, 1, 8), 3.0),
        ];
        let mut fwd = RfmState::new(PeriodUnit::Week, end, None).unwrap();
        let mut rev = fwd.clone();
        for &(t, a) in &tx {
            fwd.add(t, a).unwrap();
        }
        for &(t, a) in tx.iter().rev() {
            rev.add(t, a).unwrap();
        }
        fwd.normalise();
        rev.normalise();
        assert_eq!(fwd.periods, rev.periods);
        // Monday 2020-01-06 and Wednesday 2020-01-08 share a week: periods are that week and 01-20.
        assert_eq!(
            fwd.periods.as_slice(),
            &[(day(2020, 1, 6), 18.0), (day(2020, 1, 20), 7.0)]
        );
        let s = fwd.summary(TimeUnit::Week);
        assert_eq!((s.frequency, s.recency, s.monetary_value), (1.0, 2.0, 7.0));
        // End 2020-03-31 is a Tuesday: its week starts 2020-03-30, 12 weeks after 2020-01-06.
        assert_eq!(s.tenure, 12.0);
    }

    #[test]
    fn whole_last_period_counts_for_coarse_units() {
        // With month periods and end 1997-09-15, a purchase on 1997-09-28 is inside the end period.
        let mut s = RfmState::new(PeriodUnit::Month, day(1997, 9, 15), None).unwrap();
        s.add(at(1997, 1, 10), 1.0).unwrap();
        assert_eq!(s.add(at(1997, 9, 28), 1.0).unwrap(), Added::Calibration);
        assert_eq!(s.add(at(1997, 10, 1), 1.0).unwrap(), Added::Ignored);
        s.normalise();
        let m = s.summary(TimeUnit::Month);
        assert!(
            (m.tenure - (day(1997, 9, 1) - day(1997, 1, 1)) as f64 / DAYS_PER_MONTH).abs() < 1e-12
        );
    }

    #[test]
    fn holdout_matches_lifetimes_calibration_and_holdout_data() {
        let mut s =
            RfmState::new(PeriodUnit::Day, day(1997, 9, 30), Some(day(1998, 6, 30))).unwrap();
        s.add(at(1997, 1, 1), 10.0).unwrap();
        s.add(at(1997, 9, 30) + 3_600_000_000, 4.0).unwrap(); // same day as the end: calibration
        assert_eq!(s.add(at(1997, 12, 12), 20.0).unwrap(), Added::Holdout);
        s.add(at(1997, 12, 12), 10.0).unwrap();
        s.add(at(1998, 2, 1), 6.0).unwrap();
        assert_eq!(s.add(at(1998, 7, 1), 99.0).unwrap(), Added::Ignored);
        s.normalise();
        let h = s.summary(TimeUnit::Week).holdout.unwrap();
        assert_eq!(h.frequency, 2.0); // distinct holdout days
        assert!((h.monetary_value - 18.0).abs() < 1e-12); // per day: (20 + 10, 6) -> 36 / 2
        assert!((h.monetary_value_per_transaction - 12.0).abs() < 1e-12); // raw mean of 20, 10, 6
        assert_eq!(h.total_amount, 36.0);
        assert!((h.duration - 273.0 / 7.0).abs() < 1e-12);
        assert_eq!(s.summary(TimeUnit::Day).holdout.unwrap().duration, 273.0);
        assert!(RfmState::new(PeriodUnit::Day, 10, Some(9)).is_err());
    }

    /// lifetimes issue (PyMC-Marketing fixed it): c4 = (2015-01-16, 6), (2015-02-02, 3),
    /// (2015-02-05, 3), (2015-02-05, 6), calibration end 2015-02-01, observation end 2015-02-07.
    #[test]
    fn holdout_monetary_value_is_per_period() {
        let mut s = RfmState::new(PeriodUnit::Day, day(2015, 2, 1), Some(day(2015, 2, 7))).unwrap();
        for (d, amount) in [(16, 6.0), (33, 3.0), (36, 3.0), (36, 6.0)] {
            s.add(at(2015, 1, 1) + (d - 1) * USECS_PER_DAY, amount)
                .unwrap();
        }
        s.normalise();
        let h = s.summary(TimeUnit::Day).holdout.unwrap();
        assert_eq!(h.frequency, 2.0);
        assert_eq!(h.monetary_value, 6.0); // (3 + 9) / 2 periods
        assert_eq!(h.monetary_value_per_transaction, 4.0); // lifetimes: (3 + 3 + 6) / 3
    }

    #[test]
    fn bad_amounts_are_rejected() {
        let mut s = RfmState::new(PeriodUnit::Day, 10, None).unwrap();
        assert!(matches!(
            s.add(0, f64::NAN),
            Err(ClvError::InvalidParameter(_))
        ));
        assert!(s.add(0, f64::INFINITY).is_err());
        // Refunds are summed into their period like any amount.
        s.add(0, 10.0).unwrap();
        s.add(USECS_PER_DAY, -4.0).unwrap();
        s.normalise();
        assert_eq!(s.summary(TimeUnit::Day).monetary_value, -4.0);
    }

    #[test]
    fn merge_and_binary_round_trip() {
        let mut a = RfmState::new(PeriodUnit::Day, 100, Some(200)).unwrap();
        let mut b = a.clone();
        let mut whole = a.clone();
        for (i, t) in [5i64, 50, 7, 150, 120, 50, 9].iter().enumerate() {
            let (ts, amt) = (t * USECS_PER_DAY, i as f64 + 0.5);
            if i % 2 == 0 {
                a.add(ts, amt)
            } else {
                b.add(ts, amt)
            }
            .unwrap();
            whole.add(ts, amt).unwrap();
        }
        a.merge(&b).unwrap();
        a.normalise();
        whole.normalise();
        assert_eq!(a.summary(TimeUnit::Day), whole.summary(TimeUnit::Day));
        let mut bytes = Vec::new();
        a.encode(&mut bytes);
        assert_eq!(RfmState::decode(&bytes).unwrap(), a);
        assert!(RfmState::decode(&bytes[..bytes.len() - 1]).is_err());
        bytes[3] = 99;
        assert!(matches!(
            RfmState::decode(&bytes),
            Err(ClvError::Corrupt(_))
        ));
        let other = RfmState::new(PeriodUnit::Week, 100, Some(200)).unwrap();
        assert!(a.merge(&other).is_err());
    }

    /// Acceptance: every row of lifetimes' CDNOW summary is reproduced from the raw transactions.
    #[test]
    fn cdnow_summary_reproduces_lifetimes() {
        let base = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/cdnow/");
        let raw = std::fs::read_to_string(format!("{base}CDNOW_sample.txt"))
            .expect("reference data in tests/data");
        let end = day(1997, 9, 30);
        let mut states: BTreeMap<i64, RfmState> = BTreeMap::new();
        for line in raw.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let id: i64 = f[1].parse().unwrap();
            let ymd: i32 = f[2].parse().unwrap();
            let ts = day(ymd / 10000, (ymd / 100 % 100) as u32, (ymd % 100) as u32) as i64
                * USECS_PER_DAY;
            let st = states
                .entry(id)
                .or_insert_with(|| RfmState::new(PeriodUnit::Day, end, None).unwrap());
            st.add(ts, f[4].parse().unwrap()).unwrap();
        }
        let reference = std::fs::read_to_string(format!(
            "{base}cdnow_customers_summary_with_transactions.csv"
        ))
        .unwrap();
        let mut n = 0;
        for line in reference.lines().skip(1) {
            let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
            let st = states.get_mut(&(v[0] as i64)).expect("customer present");
            st.normalise();
            let s = st.summary(TimeUnit::Week);
            for (got, want, what) in [
                (s.frequency, v[1], "x"),
                (s.recency, v[2], "t_x"),
                (s.tenure, v[3], "T"),
                (s.monetary_value, v[4], "zbar"),
            ] {
                assert!(
                    (got - want).abs() <= 0.005 + 1e-9,
                    "customer {} {what}: {got} vs {want}",
                    v[0]
                );
            }
            n += 1;
        }
        assert_eq!(n, 2357);
        assert_eq!(states.len(), 2357);
    }
}
