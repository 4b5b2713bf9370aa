
/// The per-backend decode cache is keyed by the stored bytes: different models in one query must
/// each be scored with their own parameters.
#[pg_test]
fn scoring_uses_each_rows_own_model() {
    let rows: Vec<f64> = Spi::connect(|c| {
        c.select(
            "SELECT p_alive(m, 2, 30, 39) FROM (VALUES (bgnbd_model(0.243, 4.414, 0.793, 2.426)),
                    (bgnbd_model(0.5, 4.414, 2.0, 2.426)), (bgnbd_model(0.243, 4.414, 0.793, 2.426))) v(m)",
            None,
            &[],
        )
        .unwrap()
        .map(|r| r.get::<f64>(1).unwrap().unwrap())
        .collect()
    });
    assert_eq!(rows.len(), 3);
    assert!((rows[0] - rows[2]).abs() < 1e-15);
    assert!((rows[0] - rows[1]).abs() > 1e-3, "{rows:?}");
}

/// A model fitted inside a backend (on simulated customers) converges and survives a round trip
/// through its text form.
#[pg_test]
fn fitted_model_round_trips_through_text() {
    let same = Spi::get_one::<bool>(
        "WITH m AS (SELECT bgnbd_fit(frequency, recency, tenure) AS m
                   FROM simulate_customers(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), 5000, 52))
         SELECT m::text::bgnbd_model::text = m::text AND (m::jsonb->'fit'->>'converged')::boolean FROM m",
    );
    assert_eq!(same, Ok(Some(true)));
}

/// Invalid input raises 22023 from inside the backend (not a crash, not NaN).
#[pg_test(error = "recency (40) must not exceed T (39)")]
fn invalid_history_is_an_error() {
    Spi::get_one::<f64>("SELECT p_alive(bgnbd_model(0.243, 4.414, 0.793, 2.426), 2, 40, 39)").unwrap();
}
