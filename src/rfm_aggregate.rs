//! The `rfm` aggregates: raw transactions in, one `rfm_summary` per group out.
//!
//! Written by hand rather than with #[pg_aggregate] because the parallel support functions of an
//! `internal`-state aggregate get a wrong signature from pgrx 0.18 (issue 2351). The transition
//! functions are generated per input type (date/timestamp/timestamptz x numeric/double precision)
//! and all share one state, combine, serialize and final function.

use crate::agg_state::{new_state, state_mut};
use crate::errors::{raise_code, OrRaise};
use crate::rfm_summary::rfm_summary;
use clv_math::rfm::{PeriodUnit, RfmState, USECS_PER_DAY};
use pgrx::prelude::*;
use pgrx::{AnyNumeric, Internal, PgSqlErrorCode};

/// The transition state: the maths state plus the unit text of the first row, so that a unit that
/// changes within one group is reported instead of silently ignored.
struct AggState {
    rfm: RfmState,
    unit_text: String,
}

trait Micros {
    fn micros(self) -> Option<i64>;
}

impl Micros for Date {
    fn micros(self) -> Option<i64> {
        self.is_finite().then(|| self.to_pg_epoch_days() as i64 * USECS_PER_DAY)
    }
}

impl Micros for Timestamp {
    fn micros(self) -> Option<i64> {
        let v = self.into_inner();
        (v != i64::MIN && v != i64::MAX).then_some(v)
    }
}

/// timestamptz is taken in UTC: the day boundary does not depend on the session's TimeZone, so
/// the aggregate can be IMMUTABLE (callers wanting local days pass `ts AT TIME ZONE 'zone'`).
impl Micros for TimestampWithTimeZone {
    fn micros(self) -> Option<i64> {
        let v = self.into_inner();
        (v != i64::MIN && v != i64::MAX).then_some(v)
    }
}

fn usecs_of<T: Micros>(t: T) -> i64 {
    t.micros().unwrap_or_else(|| raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "transaction time must be finite, got infinity"))
}

trait Amount {
    fn value(self) -> f64;
}

impl Amount for f64 {
    fn value(self) -> f64 {
        self
    }
}

impl Amount for AnyNumeric {
    fn value(self) -> f64 {
        // numeric's NaN/Infinity become f64 NaN/inf and are rejected by the maths.
        f64::try_from(self).unwrap_or(f64::INFINITY)
    }
}

fn amount_of<A: Amount>(a: A) -> f64 {
    a.value()
}

fn end_day(d: Option<Date>, what: &str) -> i32 {
    match d {
        None => raise_code(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, format!("{what} must not be NULL")),
        Some(d) if !d.is_finite() => raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("{what} must be a finite date")),
        Some(d) => d.to_pg_epoch_days(),
    }
}

/// One transaction. NULL time: the row is skipped. NULL amount: counted as a purchase worth 0
/// (pandas' groupby-sum, which lifetimes uses, treats NaN the same way).
fn add_row(
    mut state: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
    usecs: Option<i64>,
    amount: Option<f64>,
    end: Option<Date>,
    holdout_end: Option<Option<Date>>,
    unit: Option<&str>,
) -> Internal {
    let Some(usecs) = usecs else { return state };
    let unit = unit.unwrap_or_else(|| raise_code(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "unit must not be NULL"));
    let (end_what, end_day_v) = if holdout_end.is_some() { ("calibration end", end_day(end, "calibration end")) } else { ("observation end", end_day(end, "observation end")) };
    let hold = holdout_end.map(|h| end_day(h, "observation end"));
    let st = state_mut(&mut state, fcinfo, || AggState {
        rfm: RfmState::new(PeriodUnit::parse(unit).or_raise(), end_day_v, hold).or_raise(),
        unit_text: unit.to_owned(),
    });
    if st.rfm.end_day != end_day_v || st.rfm.holdout_end_day != hold {
        raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("the {end_what} must be the same for every row of a group"));
    }
    if st.unit_text != unit {
        raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "the unit must be the same for every row of a group");
    }
    st.rfm.add(usecs, amount.unwrap_or(0.0)).or_raise();
    state
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_date_float8_day(state: Internal, ts: Option<Date>, amount: Option<f64>, observation_end: Option<Date>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, Some("day"))
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_date_float8(state: Internal, ts: Option<Date>, amount: Option<f64>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, unit)
}

#[pg_extern(immutable, parallel_safe, name = "rfm_holdout_trans")]
fn rfm_holdout_trans_date_float8(state: Internal, ts: Option<Date>, amount: Option<f64>, calibration_end: Option<Date>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), calibration_end, Some(observation_end), unit)
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_date_numeric_day(state: Internal, ts: Option<Date>, amount: Option<AnyNumeric>, observation_end: Option<Date>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, Some("day"))
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_date_numeric(state: Internal, ts: Option<Date>, amount: Option<AnyNumeric>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, unit)
}

#[pg_extern(immutable, parallel_safe, name = "rfm_holdout_trans")]
fn rfm_holdout_trans_date_numeric(state: Internal, ts: Option<Date>, amount: Option<AnyNumeric>, calibration_end: Option<Date>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), calibration_end, Some(observation_end), unit)
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_timestamp_float8_day(state: Internal, ts: Option<Timestamp>, amount: Option<f64>, observation_end: Option<Date>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, Some("day"))
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_timestamp_float8(state: Internal, ts: Option<Timestamp>, amount: Option<f64>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, unit)
}

#[pg_extern(immutable, parallel_safe, name = "rfm_holdout_trans")]
fn rfm_holdout_trans_timestamp_float8(state: Internal, ts: Option<Timestamp>, amount: Option<f64>, calibration_end: Option<Date>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), calibration_end, Some(observation_end), unit)
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_timestamp_numeric_day(state: Internal, ts: Option<Timestamp>, amount: Option<AnyNumeric>, observation_end: Option<Date>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, Some("day"))
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_timestamp_numeric(state: Internal, ts: Option<Timestamp>, amount: Option<AnyNumeric>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, unit)
}

#[pg_extern(immutable, parallel_safe, name = "rfm_holdout_trans")]
fn rfm_holdout_trans_timestamp_numeric(state: Internal, ts: Option<Timestamp>, amount: Option<AnyNumeric>, calibration_end: Option<Date>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), calibration_end, Some(observation_end), unit)
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_timestamptz_float8_day(state: Internal, ts: Option<TimestampWithTimeZone>, amount: Option<f64>, observation_end: Option<Date>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, Some("day"))
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_timestamptz_float8(state: Internal, ts: Option<TimestampWithTimeZone>, amount: Option<f64>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, unit)
}

#[pg_extern(immutable, parallel_safe, name = "rfm_holdout_trans")]
fn rfm_holdout_trans_timestamptz_float8(state: Internal, ts: Option<TimestampWithTimeZone>, amount: Option<f64>, calibration_end: Option<Date>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), calibration_end, Some(observation_end), unit)
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_timestamptz_numeric_day(state: Internal, ts: Option<TimestampWithTimeZone>, amount: Option<AnyNumeric>, observation_end: Option<Date>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, Some("day"))
}

#[pg_extern(immutable, parallel_safe, name = "rfm_trans")]
fn rfm_trans_timestamptz_numeric(state: Internal, ts: Option<TimestampWithTimeZone>, amount: Option<AnyNumeric>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), observation_end, None, unit)
}

#[pg_extern(immutable, parallel_safe, name = "rfm_holdout_trans")]
fn rfm_holdout_trans_timestamptz_numeric(state: Internal, ts: Option<TimestampWithTimeZone>, amount: Option<AnyNumeric>, calibration_end: Option<Date>, observation_end: Option<Date>, unit: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    add_row(state, fcinfo, ts.map(usecs_of), amount.map(amount_of), calibration_end, Some(observation_end), unit)
}

fn rfm_of(state: &Internal) -> Option<&AggState> {
    unsafe { state.get::<AggState>() }
}

#[pg_extern(immutable, parallel_safe)]
fn rfm_combine(mut a: Internal, b: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    match (rfm_of(&a).is_some(), rfm_of(&b)) {
        (_, None) => a,
        (false, Some(b)) => new_state(fcinfo, AggState { rfm: b.rfm.clone(), unit_text: b.unit_text.clone() }),
        (true, Some(b)) => {
            let merged = unsafe { a.get_mut::<AggState>() }.expect("checked");
            merged.rfm.merge(&b.rfm).or_raise();
            a
        }
    }
}

#[pg_extern(immutable, strict, parallel_safe)]
fn rfm_serialize(state: Internal) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(s) = rfm_of(&state) {
        s.rfm.encode(&mut out);
    }
    out
}

#[pg_extern(immutable, strict, parallel_safe)]
fn rfm_deserialize(bytes: &[u8], _unused: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    let rfm = RfmState::decode(bytes).or_raise();
    new_state(fcinfo, AggState { rfm, unit_text: String::new() })
}

/// NULL when the group had no transaction up to the (calibration) end: such customers have no
/// summary, as in lifetimes.
#[pg_extern(immutable, parallel_safe)]
fn rfm_final(mut state: Internal) -> Option<rfm_summary> {
    let s = unsafe { state.get_mut::<AggState>() }?;
    s.rfm.normalise();
    (!s.rfm.is_empty()).then(|| rfm_summary(s.rfm.clone()))
}

/// Re-aggregation: summaries of the same customer (e.g. one per month partition) combine into one.
#[pg_extern(immutable, parallel_safe)]
fn rfm_rollup_trans(mut state: Internal, summary: Option<rfm_summary>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    let Some(summary) = summary else { return state };
    if rfm_of(&state).is_none() {
        state = new_state(fcinfo, AggState { rfm: summary.0, unit_text: String::new() });
    } else {
        unsafe { state.get_mut::<AggState>() }.expect("checked").rfm.merge(&summary.0).or_raise();
    }
    state
}

extension_sql!(
    r#"
CREATE AGGREGATE rfm(ts date, amount double precision, observation_end date) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm(ts date, amount double precision, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm_holdout(ts date, amount double precision, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm(ts date, amount numeric, observation_end date) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm(ts date, amount numeric, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm_holdout(ts date, amount numeric, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm(ts timestamp, amount double precision, observation_end date) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm(ts timestamp, amount double precision, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm_holdout(ts timestamp, amount double precision, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm(ts timestamp, amount numeric, observation_end date) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm(ts timestamp, amount numeric, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm_holdout(ts timestamp, amount numeric, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm(ts timestamp with time zone, amount double precision, observation_end date) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm(ts timestamp with time zone, amount double precision, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm_holdout(ts timestamp with time zone, amount double precision, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm(ts timestamp with time zone, amount numeric, observation_end date) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm(ts timestamp with time zone, amount numeric, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rfm_holdout(ts timestamp with time zone, amount numeric, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);

CREATE AGGREGATE rollup(rfm_summary) (
    sfunc = rfm_rollup_trans,
    stype = internal,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    serialfunc = rfm_serialize,
    deserialfunc = rfm_deserialize,
    parallel = safe
);
"#,
    name = "rfm_aggregates",
    requires = [rfm_trans_date_float8_day, rfm_trans_date_float8, rfm_holdout_trans_date_float8, rfm_trans_date_numeric_day, rfm_trans_date_numeric, rfm_holdout_trans_date_numeric, rfm_trans_timestamp_float8_day, rfm_trans_timestamp_float8, rfm_holdout_trans_timestamp_float8, rfm_trans_timestamp_numeric_day, rfm_trans_timestamp_numeric, rfm_holdout_trans_timestamp_numeric, rfm_trans_timestamptz_float8_day, rfm_trans_timestamptz_float8, rfm_holdout_trans_timestamptz_float8, rfm_trans_timestamptz_numeric_day, rfm_trans_timestamptz_numeric, rfm_holdout_trans_timestamptz_numeric, rfm_final, rfm_combine, rfm_serialize, rfm_deserialize, rfm_rollup_trans, rfm_summary]
);
