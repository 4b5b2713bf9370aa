//! The `rfm_summary` type returned by the `rfm` aggregates, and the accessors that read it.
//!
//! A summary keeps the purchase periods themselves (not just counts) so summaries can be combined
//! again (`rollup`) and re-read in any time unit.

use crate::binary_type::{binary_datum, BinaryForm};
use crate::errors::{raise_code, OrRaise};
use clv_math::rfm::{
    civil_from_days, days_from_civil, PeriodUnit, RfmState, Summary, TimeUnit, USECS_PER_DAY,
};
use clv_math::ClvError;
use pgrx::prelude::*;
use pgrx::{InOutFuncs, PgSqlErrorCode, StringInfo};
use serde_json::{json, Value};
use std::ffi::CStr;

/// One customer's transactions condensed to purchase periods, with its observation window.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, PartialEq, PostgresType)]
#[inoutfuncs]
#[bikeshed_postgres_type_manually_impl_from_into_datum]
pub struct rfm_summary(pub RfmState);

impl BinaryForm for rfm_summary {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    fn decode(bytes: &[u8]) -> Result<Self, ClvError> {
        RfmState::decode(bytes).map(rfm_summary)
    }
}

binary_datum!(rfm_summary);

pub fn format_day(day: i32) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn format_ts(usecs: i64) -> String {
    let day = usecs.div_euclid(USECS_PER_DAY);
    let mut rest = usecs.rem_euclid(USECS_PER_DAY);
    let micros = rest % 1_000_000;
    rest /= 1_000_000;
    let (h, mi, s) = (rest / 3600, rest / 60 % 60, rest % 60);
    let base = format!("{} {h:02}:{mi:02}:{s:02}", format_day(day as i32));
    if micros == 0 {
        base
    } else {
        format!("{base}.{micros:06}")
    }
}

fn parse_day(s: &str) -> Result<i32, ClvError> {
    let bad = || {
        ClvError::InvalidParameter(format!(
            "invalid date \"{s}\" in rfm_summary (expected YYYY-MM-DD)"
        ))
    };
    let p: Vec<&str> = s.split('-').collect();
    let (y, m, d) = match p.as_slice() {
        [y, m, d] => (
            y.parse::<i32>().map_err(|_| bad())?,
            m.parse::<u32>().map_err(|_| bad())?,
            d.parse::<u32>().map_err(|_| bad())?,
        ),
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d))
}

fn parse_ts(s: &str) -> Result<i64, ClvError> {
    let bad = || ClvError::InvalidParameter(format!("invalid timestamp \"{s}\" in rfm_summary"));
    let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00:00"));
    let day = parse_day(date)? as i64;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let parts: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [h, mi, sec] = parts.as_slice() else {
        return Err(bad());
    };
    let micros: i64 = format!("{frac:0<6}")[..6].parse().map_err(|_| bad())?;
    Ok(day * USECS_PER_DAY + ((h * 60 + mi) * 60 + sec) * 1_000_000 + micros)
}

impl rfm_summary {
    pub fn summary(&self, unit: TimeUnit) -> Summary {
        self.0.summary(unit)
    }

    fn to_json(&self) -> Value {
        let s = &self.0;
        let own = s.summary(s.unit.into());
        let mut v = json!({
            "version": RfmState::VERSION,
            "unit": s.unit.name(),
            "observation_end": format_day(s.end_day),
            "frequency": own.frequency,
            "recency": own.recency,
            "tenure": own.tenure,
            "monetary_value": own.monetary_value,
            "transactions": s.n_transactions,
            "total_amount": s.total_amount,
            "first_purchase": format_ts(s.first_ts),
            "last_purchase": format_ts(s.last_ts),
            "periods": s.periods.iter().map(|&(p, a)| json!([format_day(p), a])).collect::<Vec<_>>(),
        });
        if let Some(h) = s.holdout_end_day {
            v["holdout_end"] = json!(format_day(h));
            v["holdout"] = json!({
                "periods": s.holdout_periods.iter().map(|&p| format_day(p)).collect::<Vec<_>>(),
                "transactions": s.holdout_transactions,
                "amount": s.holdout_amount,
            });
        }
        v
    }

    /// Derived fields in the text form (frequency, recency...) are ignored on input: the periods
    /// are the truth.
    fn from_json(text: &str) -> Result<Self, ClvError> {
        let bad = |m: &str| ClvError::InvalidParameter(format!("invalid rfm_summary: {m}"));
        let v: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let version = v["version"]
            .as_u64()
            .ok_or_else(|| bad("missing version"))?;
        if version != RfmState::VERSION as u64 {
            return Err(bad(&format!("version {version} is not supported")));
        }
        let unit = PeriodUnit::parse(v["unit"].as_str().ok_or_else(|| bad("missing unit"))?)?;
        let end = parse_day(
            v["observation_end"]
                .as_str()
                .ok_or_else(|| bad("missing observation_end"))?,
        )?;
        let holdout_end = v
            .get("holdout_end")
            .and_then(Value::as_str)
            .map(parse_day)
            .transpose()?;
        let mut s = RfmState::new(unit, end, holdout_end)?;
        s.n_transactions = v["transactions"]
            .as_u64()
            .ok_or_else(|| bad("missing transactions"))?;
        s.total_amount = v["total_amount"]
            .as_f64()
            .ok_or_else(|| bad("missing total_amount"))?;
        s.first_ts = parse_ts(
            v["first_purchase"]
                .as_str()
                .ok_or_else(|| bad("missing first_purchase"))?,
        )?;
        s.last_ts = parse_ts(
            v["last_purchase"]
                .as_str()
                .ok_or_else(|| bad("missing last_purchase"))?,
        )?;
        for p in v["periods"]
            .as_array()
            .ok_or_else(|| bad("missing periods"))?
        {
            let day = parse_day(p[0].as_str().ok_or_else(|| bad("period without date"))?)?;
            let amount = p[1].as_f64().ok_or_else(|| bad("period without amount"))?;
            s.periods.push((unit.period_start(day), amount));
        }
        if s.periods.is_empty() {
            return Err(bad("a summary needs at least one purchase period"));
        }
        if let Some(h) = v.get("holdout").filter(|h| !h.is_null()) {
            for p in h["periods"]
                .as_array()
                .ok_or_else(|| bad("missing holdout periods"))?
            {
                s.holdout_periods.push(
                    unit.period_start(parse_day(p.as_str().ok_or_else(|| bad("holdout period"))?)?),
                );
            }
            s.holdout_transactions = h["transactions"]
                .as_u64()
                .ok_or_else(|| bad("holdout transactions"))?;
            s.holdout_amount = h["amount"].as_f64().ok_or_else(|| bad("holdout amount"))?;
        }
        s.normalise();
        Ok(rfm_summary(s))
    }
}

impl InOutFuncs for rfm_summary {
    fn input(input: &CStr) -> Self {
        let text = input.to_str().unwrap_or_else(|_| {
            raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                "rfm_summary text is not UTF-8",
            )
        });
        match Self::from_json(text) {
            Ok(v) => v,
            Err(e) => raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                e.to_string(),
            ),
        }
    }

    fn output(&self, buffer: &mut StringInfo) {
        buffer.push_str(&self.to_json().to_string());
    }
}

fn unit_of(s: &rfm_summary, unit: Option<&str>) -> TimeUnit {
    match unit {
        Some(u) => TimeUnit::parse(u).or_raise(),
        None => s.0.unit.into(),
    }
}

fn to_timestamp(usecs: i64) -> Timestamp {
    Timestamp::try_from(usecs).unwrap_or_else(|_| {
        raise_code(
            PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
            "timestamp out of range",
        )
    })
}

/// Defines `name(rfm_summary)` and, when a unit applies, `name(rfm_summary, unit text)`.
macro_rules! accessor {
    ($name:ident, $ret:ty, |$s:ident| $body:expr) => {
        #[pg_extern(immutable, strict, parallel_safe)]
        fn $name(summary: rfm_summary) -> $ret {
            let $s = summary.summary(summary.0.unit.into());
            $body
        }
    };
    ($name:ident, $with_unit:ident = $sql:literal, $ret:ty, |$s:ident| $body:expr) => {
        #[pg_extern(immutable, strict, parallel_safe)]
        fn $name(summary: rfm_summary) -> $ret {
            let $s = summary.summary(unit_of(&summary, None));
            $body
        }
        #[pg_extern(immutable, strict, parallel_safe, name = $sql)]
        fn $with_unit(summary: rfm_summary, unit: &str) -> $ret {
            let $s = summary.summary(unit_of(&summary, Some(unit)));
            $body
        }
    };
}

accessor!(frequency, f64, |s| s.frequency);
accessor!(monetary_value, f64, |s| s.monetary_value);
accessor!(transactions, i64, |s| s.n_transactions as i64);
accessor!(total_amount, f64, |s| s.total_amount);
accessor!(average_order_value, f64, |s| s.total_amount
    / s.n_transactions as f64);
accessor!(first_purchase, Timestamp, |s| to_timestamp(s.first_ts));
accessor!(last_purchase, Timestamp, |s| to_timestamp(s.last_ts));
accessor!(interpurchase_time_cv, Option<f64>, |s| s.interpurchase_cv);
accessor!(frequency_holdout, Option<f64>, |s| s
    .holdout
    .map(|h| h.frequency));
accessor!(monetary_value_holdout, Option<f64>, |s| s
    .holdout
    .map(|h| h.monetary_value));
accessor!(monetary_value_holdout_per_transaction, Option<f64>, |s| s
    .holdout
    .map(|h| h.monetary_value_per_transaction));
accessor!(total_amount_holdout, Option<f64>, |s| s
    .holdout
    .map(|h| h.total_amount));
accessor!(recency, recency_in = "recency", f64, |s| s.recency);
accessor!(tenure, tenure_in = "tenure", f64, |s| s.tenure);
accessor!(
    time_since_last_purchase,
    time_since_last_purchase_in = "time_since_last_purchase",
    f64,
    |s| s.tenure - s.recency
);
accessor!(
    interpurchase_time_mean,
    interpurchase_time_mean_in = "interpurchase_time_mean",
    Option<f64>,
    |s| s.interpurchase_mean
);
accessor!(
    duration_holdout,
    duration_holdout_in = "duration_holdout",
    Option<f64>,
    |s| s.holdout.map(|h| h.duration)
);

/// The same customer's summary observed until a later `observation_end`: T grows, frequency,
/// recency and monetary value stay (no purchase is known after the summary's own end). What an
/// incremental refresh needs, since `rollup` merges only summaries with the same observation
/// window: `rollup(s) FROM (SELECT rfm_as_of(stored, new_end) UNION ALL SELECT rfm(ts, amount,
/// new_end) FROM new rows)` equals `rfm` over all rows (docs/refresh.md). 22023 when
/// `observation_end` is infinite or before the summary's end, or the summary has a holdout window.
#[pg_extern(immutable, strict, parallel_safe)]
fn rfm_as_of(summary: rfm_summary, observation_end: pgrx::datum::Date) -> rfm_summary {
    let bad = |m: String| -> ! { raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, m) };
    if !observation_end.is_finite() {
        bad("observation_end must be a finite date".into());
    }
    let mut s = summary.0;
    if s.holdout_end_day.is_some() {
        bad(
            "rfm_as_of cannot move the end of a calibration/holdout summary (from rfm_holdout)"
                .into(),
        );
    }
    let end = observation_end.to_pg_epoch_days();
    if end < s.end_day {
        bad(format!(
            "observation_end {} is before the summary's observation end {}",
            format_day(end),
            format_day(s.end_day)
        ));
    }
    s.end_day = end;
    rfm_summary(s)
}

/// All fields as one row, for `CROSS JOIN LATERAL rfm_fields(summary, 'week')` in a view.
#[pg_extern(immutable, strict, parallel_safe)]
#[allow(clippy::type_complexity)]
fn rfm_fields(
    summary: rfm_summary,
    unit: &str,
) -> TableIterator<
    'static,
    (
        name!(frequency, f64),
        name!(recency, f64),
        name!(tenure, f64),
        name!(monetary_value, f64),
        name!(transactions, i64),
        name!(total_amount, f64),
        name!(average_order_value, f64),
        name!(first_purchase, Timestamp),
        name!(last_purchase, Timestamp),
        name!(interpurchase_time_mean, Option<f64>),
        name!(interpurchase_time_cv, Option<f64>),
        name!(frequency_holdout, Option<f64>),
        name!(monetary_value_holdout, Option<f64>),
        name!(duration_holdout, Option<f64>),
        name!(total_amount_holdout, Option<f64>),
    ),
> {
    let s = summary.summary(unit_of(&summary, Some(unit)));
    let h = s.holdout.clone();
    TableIterator::once((
        s.frequency,
        s.recency,
        s.tenure,
        s.monetary_value,
        s.n_transactions as i64,
        s.total_amount,
        s.total_amount / s.n_transactions as f64,
        to_timestamp(s.first_ts),
        to_timestamp(s.last_ts),
        s.interpurchase_mean,
        s.interpurchase_cv,
        h.as_ref().map(|h| h.frequency),
        h.as_ref().map(|h| h.monetary_value),
        h.as_ref().map(|h| h.duration),
        h.as_ref().map(|h| h.total_amount),
    ))
}
