//! Parameter sets of the models. Kept in one place so likelihood (fitting) code and prediction code,
//! written separately, agree on names and meaning.

use serde::{Deserialize, Serialize};

/// BG/NBD (Fader, Hardie & Lee 2005): purchase rate ~ Gamma(r, alpha), dropout p ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// MBG/NBD (Batislam et al. 2007; BTYDplus): like BG/NBD but customers may drop out right after
/// the first purchase too.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MbgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// Pareto/NBD (Schmittlein, Morrison & Colombo 1987): purchase rate ~ Gamma(r, alpha),
/// dropout rate ~ Gamma(s, beta).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParetoNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub s: f64,
    pub beta: f64,
}

/// BG/BB (Fader, Hardie & Shang 2010), discrete opportunities: purchase probability
/// ~ Beta(alpha, beta), dropout probability ~ Beta(gamma, delta).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgBbParams {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    pub delta: f64,
}

/// Gamma-Gamma spend model (Fader & Hardie 2013): p, q, and gamma (named `v` here because `gamma`
/// collides with the function everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaParams {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

/// What every parameter set offers, so the optimizer, the SQL layer and the tests can treat the
/// models alike. `NAMES` fixes the order used by `to_vec`/`from_slice` and by standard errors.
pub trait ModelParams: Sized + Copy {
    const NAMES: &'static [&'static str];
    fn to_vec(&self) -> Vec<f64>;
    fn from_slice(v: &[f64]) -> Self;

    /// Every parameter must be finite and strictly positive.
    fn validate(&self) -> crate::error::Result<()> {
        for (name, v) in Self::NAMES.iter().zip(self.to_vec()) {
            if !(v.is_finite() && v > 0.0) {
                return Err(crate::ClvError::InvalidParameter(format!(
                    "parameter {name} must be a finite number > 0, got {v}"
                )));
            }
        }
        Ok(())
    }
}

macro_rules! model_params {
    ($t:ident { $($f:ident),+ }) => {
        impl ModelParams for $t {
            const NAMES: &'static [&'static str] = &[$(stringify!($f)),+];
            fn to_vec(&self) -> Vec<f64> { vec![$(self.$f),+] }
            fn from_slice(v: &[f64]) -> Self {
                let mut it = v.iter().copied();
                $t { $($f: it.next().expect("parameter count")),+ }
            }
        }
    };
}

model_params!(BgNbdParams { r, alpha, a, b });
model_params!(MbgNbdParams { r, alpha, a, b });
model_params!(ParetoNbdParams { r, alpha, s, beta });
model_params!(BgBbParams {
    alpha,
    beta,
    gamma,
    delta
});
model_params!(GammaGammaParams { p, q, v });
