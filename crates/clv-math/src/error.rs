use std::fmt;

/// Every failure the maths can report. The SQL layer maps each kind onto one SQLSTATE, so the kind
/// must say *whose* fault it is, not where it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum ClvError {
    /// The caller passed a value outside the domain (NaN, infinity, recency > T, unknown unit...).
    /// SQLSTATE 22023 (invalid_parameter_value).
    InvalidParameter(String),
    /// The optimizer did not reach a maximum; `hint` tells the user what to try.
    /// SQLSTATE 2201E-like numeric failure; mapped to 22000 (data_exception) with a HINT.
    NoConvergence { message: String, hint: String },
    /// Stored bytes that this version cannot read. SQLSTATE 22P03 (invalid_binary_representation).
    Corrupt(String),
}

impl fmt::Display for ClvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClvError::InvalidParameter(m) => write!(f, "{m}"),
            ClvError::NoConvergence { message, .. } => write!(f, "{message}"),
            ClvError::Corrupt(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ClvError {}

pub type Result<T> = std::result::Result<T, ClvError>;

/// Reject NaN and infinities with a message naming the argument.
pub fn finite(name: &str, v: f64) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ClvError::InvalidParameter(format!(
            "{name} must be a finite number, got {v}"
        )))
    }
}
