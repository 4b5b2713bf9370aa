//! The `rfm` aggregates: raw transactions in, one `rfm_summary` per group out.
//!
//! Written by hand rather than with #[pg_aggregate]: the state is a `clv_aggregate_state` expanded
//! object (agg_state.rs; Citus partially aggregates only real state types), and the transition
//! and final functions are plain V1 C functions that read their arguments' datums directly. The
//! transition runs once per transaction, so it avoids pgrx's argument conversions (text to &str
//! with UTF-8 checks on every row, Option wrappers) - see bench/README.md for what that buys.
//! One transition function per input type (date/timestamp/timestamptz x numeric/double precision)
//! and form; all share one state, combine and final function. `sspace` tells the planner the
//! state's real size (a few hundred bytes, not the 8 kB it assumes for a variable-length type), so
//! it plans an in-memory hash aggregate instead of a spilling one for millions of customers.

use crate::agg_state::{combine, new_state, state_kind_methods, state_mut, State, StateKind};
use crate::errors::{raise_code, OrRaise};
use crate::rfm_summary::rfm_summary;
use crate::v1::{arg, function_info_v1, varlena_bytes};
use clv_math::rfm::{PeriodUnit, RfmState, USECS_PER_DAY};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// The transition state: the maths state plus the unit datum seen last, so that a unit that
/// changes within one group is reported instead of silently ignored. Constant arguments arrive as
/// the same pointer on every row, which lets the per-row check skip parsing text.
#[repr(C)]
#[derive(Clone)]
pub struct AggState {
    unit_ptr: usize,
    rfm: RfmState,
}

// A state per customer, millions per query: palloc rounds chunks up to a power of two, and 257
// bytes would cost 512 (and a third more page faults and cache misses, bench/agg_state_bench.sh).
const _: () = assert!(crate::agg_state::expanded_size::<AggState>() <= 256);

impl StateKind for AggState {
    const KIND: u8 = 1;
    const NAME: &'static str = "rfm";
    fn encode(&mut self, out: &mut Vec<u8>) {
        self.rfm.encode(out);
    }
    fn decode(bytes: &[u8]) -> Self {
        from_summary(RfmState::decode(bytes).or_raise())
    }
    fn merge(&mut self, other: &mut Self) {
        self.rfm.merge(&other.rfm).or_raise();
    }
    state_kind_methods!(AggState);
}

#[derive(Clone, Copy)]
enum TsKind {
    Date,
    /// timestamp, and timestamptz taken in UTC: the day boundary does not depend on the session's
    /// TimeZone, so the aggregate is IMMUTABLE (for local days pass `ts AT TIME ZONE 'zone'`).
    Timestamp,
}

#[derive(Clone, Copy)]
enum AmountKind {
    Float8,
    Numeric,
}

#[derive(Clone, Copy)]
enum Form {
    /// rfm(ts, amount, observation_end): day periods.
    Day,
    /// rfm(ts, amount, observation_end, unit)
    Unit,
    /// rfm_holdout(ts, amount, calibration_end, observation_end, unit)
    Holdout,
}

/// The C symbol itself (pgrx's binding is a guarded Rust wrapper, not a PGFunction pointer).
mod numeric_float8_raw {
    use pgrx::pg_sys;
    unsafe extern "C-unwind" {
        pub fn numeric_float8(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
    }
}

fn ts_usecs(kind: TsKind, d: pg_sys::Datum) -> i64 {
    let v = match kind {
        TsKind::Date => {
            let days = d.value() as i32;
            if days == i32::MIN || days == i32::MAX {
                i64::MAX
            } else {
                days as i64 * USECS_PER_DAY
            }
        }
        TsKind::Timestamp => d.value() as i64,
    };
    if v == i64::MIN || v == i64::MAX {
        raise_code(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "transaction time must be finite, got infinity",
        );
    }
    v
}

fn amount_f64(kind: AmountKind, d: pg_sys::Datum) -> f64 {
    match kind {
        AmountKind::Float8 => f64::from_bits(d.value() as u64),
        // numeric's NaN/Infinity become f64 NaN/inf and are rejected by the maths.
        AmountKind::Numeric => unsafe {
            let f = pg_sys::DirectFunctionCall1Coll(
                Some(numeric_float8_raw::numeric_float8),
                pg_sys::InvalidOid,
                d,
            );
            f64::from_bits(f.value() as u64)
        },
    }
}

fn end_day(d: Option<pg_sys::Datum>, what: &str) -> i32 {
    match d {
        None => raise_code(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be NULL"),
        ),
        Some(d) => {
            let days = d.value() as i32;
            if days == i32::MIN || days == i32::MAX {
                raise_code(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("{what} must be a finite date"),
                );
            }
            days
        }
    }
}

fn parse_unit(d: Option<pg_sys::Datum>) -> PeriodUnit {
    let text = d.map_or(&b"day"[..], |d| unsafe { varlena_bytes(d) });
    PeriodUnit::parse(&String::from_utf8_lossy(text)).or_raise()
}

/// One transaction. NULL time: the row is skipped. NULL amount: counted as a purchase worth 0
/// (pandas' groupby-sum, which lifetimes uses, treats NaN the same way).
unsafe fn transition(
    fcinfo: pg_sys::FunctionCallInfo,
    ts: TsKind,
    amount: AmountKind,
    form: Form,
) -> pg_sys::Datum {
    unsafe {
        let mut state = State::from(arg(fcinfo, 0));
        let Some(ts_datum) = arg(fcinfo, 1) else {
            return state.into_return(fcinfo);
        };
        let usecs = ts_usecs(ts, ts_datum);
        let value = arg(fcinfo, 2).map_or(0.0, |d| amount_f64(amount, d));
        let (end, hold, unit_arg, end_what) = match form {
            Form::Day => (
                end_day(arg(fcinfo, 3), "observation end"),
                None,
                None,
                "observation end",
            ),
            Form::Unit => (
                end_day(arg(fcinfo, 3), "observation end"),
                None,
                Some(4),
                "observation end",
            ),
            Form::Holdout => (
                end_day(arg(fcinfo, 3), "calibration end"),
                Some(end_day(arg(fcinfo, 4), "observation end")),
                Some(5),
                "calibration end",
            ),
        };
        let unit_datum = unit_arg.map(|i| {
            arg(fcinfo, i).unwrap_or_else(|| {
                raise_code(
                    PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                    "unit must not be NULL",
                )
            })
        });
        let st = state_mut(&mut state, fcinfo, || AggState {
            rfm: RfmState::new(parse_unit(unit_datum), end, hold).or_raise(),
            unit_ptr: unit_datum.map_or(0, |d| d.value()),
        });
        if st.rfm.end_day != end || st.rfm.holdout_end_day != hold {
            raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("the {end_what} must be the same for every row of a group"),
            );
        }
        if let Some(d) = unit_datum {
            if d.value() != st.unit_ptr {
                if parse_unit(Some(d)) != st.rfm.unit {
                    raise_code(
                        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                        "the unit must be the same for every row of a group",
                    );
                }
                st.unit_ptr = d.value();
            }
        }
        st.rfm.add(usecs, value).or_raise();
        state.into_return(fcinfo)
    }
}

macro_rules! transition_fn {
    ($name:ident, $finfo:ident, $ts:expr, $amount:expr, $form:expr) => {
        function_info_v1!($finfo);
        #[pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $name(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            unsafe { transition(fcinfo, $ts, $amount, $form) }
        }
    };
}
transition_fn!(
    clv_rfm_trans_date_float8_day,
    pg_finfo_clv_rfm_trans_date_float8_day,
    TsKind::Date,
    AmountKind::Float8,
    Form::Day
);
transition_fn!(
    clv_rfm_trans_date_float8_unit,
    pg_finfo_clv_rfm_trans_date_float8_unit,
    TsKind::Date,
    AmountKind::Float8,
    Form::Unit
);
transition_fn!(
    clv_rfm_trans_date_float8_holdout,
    pg_finfo_clv_rfm_trans_date_float8_holdout,
    TsKind::Date,
    AmountKind::Float8,
    Form::Holdout
);
transition_fn!(
    clv_rfm_trans_date_numeric_day,
    pg_finfo_clv_rfm_trans_date_numeric_day,
    TsKind::Date,
    AmountKind::Numeric,
    Form::Day
);
transition_fn!(
    clv_rfm_trans_date_numeric_unit,
    pg_finfo_clv_rfm_trans_date_numeric_unit,
    TsKind::Date,
    AmountKind::Numeric,
    Form::Unit
);
transition_fn!(
    clv_rfm_trans_date_numeric_holdout,
    pg_finfo_clv_rfm_trans_date_numeric_holdout,
    TsKind::Date,
    AmountKind::Numeric,
    Form::Holdout
);
transition_fn!(
    clv_rfm_trans_timestamp_float8_day,
    pg_finfo_clv_rfm_trans_timestamp_float8_day,
    TsKind::Timestamp,
    AmountKind::Float8,
    Form::Day
);
transition_fn!(
    clv_rfm_trans_timestamp_float8_unit,
    pg_finfo_clv_rfm_trans_timestamp_float8_unit,
    TsKind::Timestamp,
    AmountKind::Float8,
    Form::Unit
);
transition_fn!(
    clv_rfm_trans_timestamp_float8_holdout,
    pg_finfo_clv_rfm_trans_timestamp_float8_holdout,
    TsKind::Timestamp,
    AmountKind::Float8,
    Form::Holdout
);
transition_fn!(
    clv_rfm_trans_timestamp_numeric_day,
    pg_finfo_clv_rfm_trans_timestamp_numeric_day,
    TsKind::Timestamp,
    AmountKind::Numeric,
    Form::Day
);
transition_fn!(
    clv_rfm_trans_timestamp_numeric_unit,
    pg_finfo_clv_rfm_trans_timestamp_numeric_unit,
    TsKind::Timestamp,
    AmountKind::Numeric,
    Form::Unit
);
transition_fn!(
    clv_rfm_trans_timestamp_numeric_holdout,
    pg_finfo_clv_rfm_trans_timestamp_numeric_holdout,
    TsKind::Timestamp,
    AmountKind::Numeric,
    Form::Holdout
);
transition_fn!(
    clv_rfm_trans_timestamptz_float8_day,
    pg_finfo_clv_rfm_trans_timestamptz_float8_day,
    TsKind::Timestamp,
    AmountKind::Float8,
    Form::Day
);
transition_fn!(
    clv_rfm_trans_timestamptz_float8_unit,
    pg_finfo_clv_rfm_trans_timestamptz_float8_unit,
    TsKind::Timestamp,
    AmountKind::Float8,
    Form::Unit
);
transition_fn!(
    clv_rfm_trans_timestamptz_float8_holdout,
    pg_finfo_clv_rfm_trans_timestamptz_float8_holdout,
    TsKind::Timestamp,
    AmountKind::Float8,
    Form::Holdout
);
transition_fn!(
    clv_rfm_trans_timestamptz_numeric_day,
    pg_finfo_clv_rfm_trans_timestamptz_numeric_day,
    TsKind::Timestamp,
    AmountKind::Numeric,
    Form::Day
);
transition_fn!(
    clv_rfm_trans_timestamptz_numeric_unit,
    pg_finfo_clv_rfm_trans_timestamptz_numeric_unit,
    TsKind::Timestamp,
    AmountKind::Numeric,
    Form::Unit
);
transition_fn!(
    clv_rfm_trans_timestamptz_numeric_holdout,
    pg_finfo_clv_rfm_trans_timestamptz_numeric_holdout,
    TsKind::Timestamp,
    AmountKind::Numeric,
    Form::Holdout
);

function_info_v1!(pg_finfo_clv_rfm_final);

/// NULL when the group had no transaction up to the (calibration) end: such customers have no
/// summary, as in lifetimes. Encodes straight from the state (no copy of it): the final function
/// runs once per customer.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn clv_rfm_final(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe {
        let mut state = State::from(arg(fcinfo, 0));
        match state.get_mut::<AggState>() {
            Some(s) if !s.rfm.is_empty() => {
                // Normalising is idempotent, so a final function called again (window frames,
                // shared states) sees the same summary.
                s.rfm.normalise();
                let mut bytes = Vec::new();
                s.rfm.encode(&mut bytes);
                pgrx::rust_byte_slice_to_bytea(&bytes).into_pg().into()
            }
            _ => {
                (*fcinfo).isnull = true;
                pg_sys::Datum::from(0)
            }
        }
    }
}

fn from_summary(rfm: RfmState) -> AggState {
    AggState { rfm, unit_ptr: 0 }
}

#[pg_extern(immutable, parallel_safe)]
fn rfm_combine(a: Option<State>, b: Option<State>, fcinfo: pg_sys::FunctionCallInfo) -> State {
    combine::<AggState>(a, b, fcinfo)
}

/// Re-aggregation: summaries of the same customer (e.g. one per month partition) combine into one.
#[pg_extern(immutable, parallel_safe)]
fn rfm_rollup_trans(
    mut state: State,
    summary: Option<rfm_summary>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    let Some(summary) = summary else { return state };
    match state.get_mut::<AggState>() {
        None => state = new_state(fcinfo, from_summary(summary.0)),
        Some(s) => s.rfm.merge(&summary.0).or_raise(),
    }
    state
}

extension_sql!(
    r#"
CREATE FUNCTION rfm_final(clv_aggregate_state) RETURNS rfm_summary
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_final';

CREATE FUNCTION rfm_trans(clv_aggregate_state, date, double precision, date) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_date_float8_day';

CREATE AGGREGATE rfm(ts date, amount double precision, observation_end date) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_trans(clv_aggregate_state, date, double precision, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_date_float8_unit';

CREATE AGGREGATE rfm(ts date, amount double precision, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_holdout_trans(clv_aggregate_state, date, double precision, date, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_date_float8_holdout';

CREATE AGGREGATE rfm_holdout(ts date, amount double precision, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_trans(clv_aggregate_state, date, numeric, date) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_date_numeric_day';

CREATE AGGREGATE rfm(ts date, amount numeric, observation_end date) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_trans(clv_aggregate_state, date, numeric, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_date_numeric_unit';

CREATE AGGREGATE rfm(ts date, amount numeric, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_holdout_trans(clv_aggregate_state, date, numeric, date, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_date_numeric_holdout';

CREATE AGGREGATE rfm_holdout(ts date, amount numeric, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_trans(clv_aggregate_state, timestamp, double precision, date) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamp_float8_day';

CREATE AGGREGATE rfm(ts timestamp, amount double precision, observation_end date) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_trans(clv_aggregate_state, timestamp, double precision, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamp_float8_unit';

CREATE AGGREGATE rfm(ts timestamp, amount double precision, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_holdout_trans(clv_aggregate_state, timestamp, double precision, date, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamp_float8_holdout';

CREATE AGGREGATE rfm_holdout(ts timestamp, amount double precision, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_trans(clv_aggregate_state, timestamp, numeric, date) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamp_numeric_day';

CREATE AGGREGATE rfm(ts timestamp, amount numeric, observation_end date) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_trans(clv_aggregate_state, timestamp, numeric, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamp_numeric_unit';

CREATE AGGREGATE rfm(ts timestamp, amount numeric, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_holdout_trans(clv_aggregate_state, timestamp, numeric, date, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamp_numeric_holdout';

CREATE AGGREGATE rfm_holdout(ts timestamp, amount numeric, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_trans(clv_aggregate_state, timestamp with time zone, double precision, date) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamptz_float8_day';

CREATE AGGREGATE rfm(ts timestamp with time zone, amount double precision, observation_end date) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_trans(clv_aggregate_state, timestamp with time zone, double precision, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamptz_float8_unit';

CREATE AGGREGATE rfm(ts timestamp with time zone, amount double precision, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_holdout_trans(clv_aggregate_state, timestamp with time zone, double precision, date, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamptz_float8_holdout';

CREATE AGGREGATE rfm_holdout(ts timestamp with time zone, amount double precision, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_trans(clv_aggregate_state, timestamp with time zone, numeric, date) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamptz_numeric_day';

CREATE AGGREGATE rfm(ts timestamp with time zone, amount numeric, observation_end date) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_trans(clv_aggregate_state, timestamp with time zone, numeric, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamptz_numeric_unit';

CREATE AGGREGATE rfm(ts timestamp with time zone, amount numeric, observation_end date, unit text) (
    sfunc = rfm_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE FUNCTION rfm_holdout_trans(clv_aggregate_state, timestamp with time zone, numeric, date, date, text) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_rfm_trans_timestamptz_numeric_holdout';

CREATE AGGREGATE rfm_holdout(ts timestamp with time zone, amount numeric, calibration_end date, observation_end date, unit text) (
    sfunc = rfm_holdout_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);

CREATE AGGREGATE rollup(rfm_summary) (
    sfunc = rfm_rollup_trans,
    stype = clv_aggregate_state,
    sspace = 320,
    finalfunc = rfm_final,
    combinefunc = rfm_combine,
    parallel = safe
);
"#,
    name = "rfm_aggregates",
    requires = [rfm_combine, rfm_rollup_trans, rfm_summary]
);
