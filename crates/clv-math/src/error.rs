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
    /// Valid inputs whose result is not a finite number (it overflows, or the formulas cannot
    /// represent it). SQLSTATE 22003 (numeric_value_out_of_range).
    OutOfRange(String),
}

impl fmt::Display for ClvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClvError::InvalidParameter(m) => write!(f, "{m}"),
            ClvError::NoConvergence { message, .. } => write!(f, "{message}"),
            ClvError::Corrupt(m) => write!(f, "{m}"),
            ClvError::OutOfRange(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ClvError {}

pub type Result<T> = std::result::Result<T, ClvError>;

/// A number in a message: as `{}` prints it for magnitudes in [1e-5, 1e12), in exponent form beyond
/// (`{}` would print 1e300 with 301 digits and 1e-300 with 300 zeros).
#[derive(Debug, Clone, Copy)]
pub struct Num(pub f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v != 0.0 && v.is_finite() && !(1e-5..1e12).contains(&v.abs()) {
            write!(f, "{v:e}")
        } else {
            write!(f, "{v}")
        }
    }
}

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

/// A public result: `v` when finite, otherwise [`ClvError::OutOfRange`] naming the quantity.
/// Every prediction and scoring entry point passes its value through this, so no NaN or infinity
/// leaves the crate.
pub fn finite_result(name: &str, v: f64) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ClvError::OutOfRange(format!(
            "{name} is out of the range of double precision for these inputs (got {v})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_result_passes_numbers_and_names_the_rest() {
        assert_eq!(finite_result("x", 1.5), Ok(1.5));
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            match finite_result("expected purchases", v) {
                Err(ClvError::OutOfRange(m)) => assert!(m.starts_with("expected purchases"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            ClvError::OutOfRange("too big".into()).to_string(),
            "too big"
        );
        let shown: Vec<String> = [40.0, 1.5, -2.25, 0.0, 1e300, -1e-300, f64::NAN]
            .iter()
            .map(|&v| Num(v).to_string())
            .collect();
        assert_eq!(
            shown,
            ["40", "1.5", "-2.25", "0", "1e300", "-1e-300", "NaN"]
        );
    }
}
