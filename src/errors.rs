//! The one place where maths errors become PostgreSQL errors, so every function reports the same
//! kind of mistake with the same SQLSTATE.

use clv_math::ClvError;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

pub fn raise(e: ClvError) -> ! {
    let (code, hint) = match &e {
        ClvError::InvalidParameter(_) => (PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, None),
        ClvError::NoConvergence { hint, .. } => {
            (PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, Some(hint.clone()))
        }
        ClvError::Corrupt(_) => (PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION, None),
        ClvError::OutOfRange(_) => (PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, None),
    };
    let mut report = ErrorReport::new(code, e.to_string(), "clv_ext");
    if let Some(h) = hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Raise with an explicit SQLSTATE (for conditions the maths does not know about, e.g. NULLs).
pub fn raise_code(code: PgSqlErrorCode, message: impl Into<String>) -> ! {
    ErrorReport::new(code, message.into(), "clv_ext").report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, ClvError> {
    #[inline]
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(e),
        }
    }
}

/// A value computed in the SQL layer itself (CLV from memoised model terms, simulated amounts):
/// SQLSTATE 22003 (numeric_value_out_of_range) when it is not a finite number. Predictions of the
/// maths need no such check: `clv_math::error::finite_result` already reports them as
/// `ClvError::OutOfRange`, which `raise` maps to the same SQLSTATE.
#[inline]
pub fn finite_or_raise(v: f64, what: &str) -> f64 {
    if v.is_finite() {
        v
    } else {
        out_of_range(v, what)
    }
}

#[cold]
fn out_of_range(v: f64, what: &str) -> ! {
    raise_code(
        PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{what} is out of range for these arguments (it would be {v})"),
    )
}

/// The value of an argument that must not be NULL (SQLSTATE 22004 otherwise), for functions that
/// are not STRICT because another argument may be NULL.
pub fn not_null<T>(v: Option<T>, what: &str) -> T {
    v.unwrap_or_else(|| {
        raise_code(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be NULL"),
        )
    })
}

/// A count argument that must be >= 0 (SQLSTATE 22023 otherwise).
pub fn nonnegative(what: &str, v: i32) -> u32 {
    u32::try_from(v).unwrap_or_else(|_| {
        raise_code(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{what} must be >= 0, got {v}"),
        )
    })
}

/// The elements of an array argument that must be neither NULL nor contain NULL (22004).
pub fn no_null_elements<T>(v: Option<Vec<Option<T>>>, what: &str) -> Vec<T> {
    not_null(v, what)
        .into_iter()
        .map(|e| {
            e.unwrap_or_else(|| {
                raise_code(
                    PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                    format!("{what} must not contain NULL"),
                )
            })
        })
        .collect()
}

impl<T> OrRaise<T> for Result<T, clv_charts::ChartError> {
    /// Data a chart cannot draw is the caller's (22023); a drawing failure is ours (XX000).
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(clv_charts::ChartError::Invalid(m)) => {
                raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, m)
            }
            Err(e @ clv_charts::ChartError::Draw(_)) => {
                raise_code(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string())
            }
        }
    }
}
