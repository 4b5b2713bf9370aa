//! Fitted models as SQL values: `bgnbd_model`, `pareto_nbd_model`, `mbgnbd_model`, `bgbb_model`
//! and `gamma_gamma_model`.
//!
//! A value is stored as versioned JSON (the same text `::text` and `::jsonb` show), so values
//! stored today stay readable after an upgrade: later releases add fields with defaults and keep
//! reading `"version": 1`. Scoring decodes the model once per distinct value and caches it, so
//! per-row scoring pays a byte comparison, not a JSON parse.

use crate::binary_type::{binary_datum, BinaryForm};
use crate::errors::raise_code;
use clv_math::fit::Fit;
use clv_math::{
    BgBbParams, BgNbdParams, ClvError, GammaGammaParams, MbgNbdParams, ModelParams, ParetoNbdParams,
};
use pgrx::prelude::*;
use pgrx::{InOutFuncs, PgSqlErrorCode, StringInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::sync::Arc;

pub const MODEL_VERSION: u32 = 1;

/// How a model was fitted; absent for models built from explicit parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitInfo {
    /// Total log-likelihood in the data's own time unit (comparable with published values).
    pub log_likelihood: f64,
    pub n_customers: f64,
    pub n_distinct_rows: u64,
    pub aic: f64,
    pub bic: f64,
    /// Standard errors from the inverse Hessian; null when it is singular.
    pub std_errors: Option<BTreeMap<String, f64>>,
    pub converged: bool,
    pub iterations: usize,
    pub gradient_norm: f64,
    pub penalizer: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored<P> {
    pub version: u32,
    pub model: String,
    pub params: P,
    #[serde(default)]
    pub fit: Option<FitInfo>,
}

impl<P: ModelParams + Serialize> Stored<P> {
    pub fn from_fit(model: &str, fit: Fit<P>, n_distinct_rows: u64, penalizer: f64) -> Self {
        let std_errors = fit
            .std_errors
            .map(|se| P::NAMES.iter().map(|n| n.to_string()).zip(se).collect());
        Stored {
            version: MODEL_VERSION,
            model: model.to_owned(),
            params: fit.params,
            fit: Some(FitInfo {
                log_likelihood: fit.log_likelihood,
                n_customers: fit.n_customers,
                n_distinct_rows,
                aic: fit.aic,
                bic: fit.bic,
                std_errors,
                converged: fit.converged,
                iterations: fit.iterations,
                gradient_norm: fit.gradient_norm,
                penalizer,
            }),
        }
    }
}

fn parse<P: for<'de> Deserialize<'de> + ModelParams>(
    kind: &str,
    text: &[u8],
) -> Result<Stored<P>, ClvError> {
    let s: Stored<P> = serde_json::from_slice(text)
        .map_err(|e| ClvError::InvalidParameter(format!("invalid {kind}_model: {e}")))?;
    if s.version != MODEL_VERSION {
        return Err(ClvError::InvalidParameter(format!(
            "{kind}_model version {} is not supported by this release",
            s.version
        )));
    }
    if s.model != kind {
        return Err(ClvError::InvalidParameter(format!(
            "a {} model is not a {kind}_model",
            s.model
        )));
    }
    s.params.validate()?;
    Ok(s)
}

/// Declares one model type: storage, text I/O, cast to jsonb, constructor, and a per-backend cache
/// of the last decoded value.
macro_rules! model_type {
    ($t:ident, $p:ty, $kind:literal, $sql:literal, $ctor:ident($($arg:ident),+)) => {
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, PartialEq, PostgresType)]
        #[inoutfuncs]
        #[bikeshed_postgres_type_manually_impl_from_into_datum]
        pub struct $t(pub Arc<Stored<$p>>);

        impl $t {
            pub fn params(&self) -> &$p {
                &self.0.params
            }
        }

        impl BinaryForm for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&serde_json::to_vec(&*self.0).expect("model serializes"));
            }
            fn decode(bytes: &[u8]) -> Result<Self, ClvError> {
                thread_local! {
                    static LAST: std::cell::RefCell<Option<(Vec<u8>, Arc<Stored<$p>>)>> = const { std::cell::RefCell::new(None) };
                }
                if let Some(hit) = LAST.with(|c| c.borrow().as_ref().filter(|(b, _)| b.as_slice() == bytes).map(|(_, m)| m.clone())) {
                    return Ok($t(hit));
                }
                let m = Arc::new(parse::<$p>($kind, bytes).map_err(|e| ClvError::Corrupt(e.to_string()))?);
                LAST.with(|c| *c.borrow_mut() = Some((bytes.to_vec(), m.clone())));
                Ok($t(m))
            }
        }

        binary_datum!($t);

        impl InOutFuncs for $t {
            fn input(input: &CStr) -> Self {
                match parse::<$p>($kind, input.to_bytes()) {
                    Ok(s) => $t(Arc::new(s)),
                    Err(e) => raise_code(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, e.to_string()),
                }
            }
            fn output(&self, buffer: &mut StringInfo) {
                buffer.push_str(&serde_json::to_string(&*self.0).expect("model serializes"));
            }
        }

        /// A model from explicit parameters (e.g. published values), for scoring without fitting.
        #[pg_extern(immutable, strict, parallel_safe, name = $sql)]
        fn $ctor($($arg: f64),+) -> $t {
            let params = <$p>::from_slice(&[$($arg),+]);
            crate::errors::OrRaise::or_raise(params.validate());
            $t(Arc::new(Stored { version: MODEL_VERSION, model: $kind.to_owned(), params, fit: None }))
        }
    };
}

model_type!(
    bgnbd_model,
    BgNbdParams,
    "bgnbd",
    "bgnbd_model",
    bgnbd_model_from(r, alpha, a, b)
);
model_type!(
    pareto_nbd_model,
    ParetoNbdParams,
    "pareto_nbd",
    "pareto_nbd_model",
    pareto_nbd_model_from(r, alpha, s, beta)
);
model_type!(
    mbgnbd_model,
    MbgNbdParams,
    "mbgnbd",
    "mbgnbd_model",
    mbgnbd_model_from(r, alpha, a, b)
);
model_type!(
    bgbb_model,
    BgBbParams,
    "bgbb",
    "bgbb_model",
    bgbb_model_from(alpha, beta, gamma, delta)
);
model_type!(
    gamma_gamma_model,
    GammaGammaParams,
    "gamma_gamma",
    "gamma_gamma_model",
    gamma_gamma_model_from(p, q, v)
);

extension_sql!(
    r#"
CREATE CAST (bgnbd_model AS jsonb) WITH INOUT;
CREATE CAST (pareto_nbd_model AS jsonb) WITH INOUT;
CREATE CAST (mbgnbd_model AS jsonb) WITH INOUT;
CREATE CAST (bgbb_model AS jsonb) WITH INOUT;
CREATE CAST (gamma_gamma_model AS jsonb) WITH INOUT;
"#,
    name = "model_casts",
    requires = [
        bgnbd_model,
        pareto_nbd_model,
        mbgnbd_model,
        bgbb_model,
        gamma_gamma_model
    ]
);
