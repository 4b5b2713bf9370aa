-- clv_ext 0.1.0 -> 0.2.0: clv() and the fit aggregates' transition functions became plain V1 C
-- functions (see bench/README.md); same signatures, new C symbols. The library keeps the 0.1.0
-- symbols too (src/compat.rs), so nothing breaks between installing it and running this.
\echo Use "ALTER EXTENSION clv_ext UPDATE TO '0.2.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION bgnbd_fit_trans(state internal, a double precision, b double precision, c double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION bgnbd_fit_trans(state internal, a double precision, b double precision, c double precision, weight double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION bgnbd_fit_trans(state internal, a double precision, b double precision, c double precision, weight double precision, penalizer double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION pareto_nbd_fit_trans(state internal, a double precision, b double precision, c double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION pareto_nbd_fit_trans(state internal, a double precision, b double precision, c double precision, weight double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION pareto_nbd_fit_trans(state internal, a double precision, b double precision, c double precision, weight double precision, penalizer double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION mbgnbd_fit_trans(state internal, a double precision, b double precision, c double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION mbgnbd_fit_trans(state internal, a double precision, b double precision, c double precision, weight double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION mbgnbd_fit_trans(state internal, a double precision, b double precision, c double precision, weight double precision, penalizer double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION bgbb_fit_trans(state internal, a double precision, b double precision, c double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION bgbb_fit_trans(state internal, a double precision, b double precision, c double precision, weight double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION bgbb_fit_trans(state internal, a double precision, b double precision, c double precision, weight double precision, penalizer double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE OR REPLACE FUNCTION gamma_gamma_fit_trans(state internal, frequency double precision, monetary_value double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans2';
CREATE OR REPLACE FUNCTION gamma_gamma_fit_trans(state internal, frequency double precision, monetary_value double precision, weight double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans2';
CREATE OR REPLACE FUNCTION gamma_gamma_fit_trans(state internal, frequency double precision, monetary_value double precision, weight double precision, penalizer double precision) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans2';
CREATE OR REPLACE FUNCTION clv(model bgnbd_model, spend gamma_gamma_model, frequency double precision, recency double precision, tenure double precision, monetary_value double precision, months integer DEFAULT 12, discount_rate double precision DEFAULT 0.01, time_unit text DEFAULT 'week') RETURNS double precision
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_bgnbd';
CREATE OR REPLACE FUNCTION clv(model pareto_nbd_model, spend gamma_gamma_model, frequency double precision, recency double precision, tenure double precision, monetary_value double precision, months integer DEFAULT 12, discount_rate double precision DEFAULT 0.01, time_unit text DEFAULT 'week') RETURNS double precision
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_pareto_nbd';
CREATE OR REPLACE FUNCTION clv(model mbgnbd_model, spend gamma_gamma_model, frequency double precision, recency double precision, tenure double precision, monetary_value double precision, months integer DEFAULT 12, discount_rate double precision DEFAULT 0.01, time_unit text DEFAULT 'week') RETURNS double precision
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_mbgnbd';
CREATE OR REPLACE FUNCTION clv(model bgbb_model, spend gamma_gamma_model, frequency double precision, recency double precision, tenure double precision, monetary_value double precision, months integer DEFAULT 12, discount_rate double precision DEFAULT 0.01, time_unit text DEFAULT 'week') RETURNS double precision
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_bgbb';
