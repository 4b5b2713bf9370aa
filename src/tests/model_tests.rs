
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

/// Fitting through the aggregate in a backend reproduces the published CDNOW-like fit on a small
/// hand-made sample and returns a storable, re-readable value.
#[pg_test]
fn fitted_model_round_trips_through_text() {
    let same = Spi::get_one::<bool>(
        "WITH m AS (SELECT bgnbd_fit(x, tx, t) AS m FROM (VALUES (2.0, 30.43, 38.86), (1.0, 1.71, 38.86), (0.0, 0.0, 38.86),
                 (0.0, 0.0, 38.86), (0.0, 0.0, 38.86), (7.0, 29.43, 38.86), (1.0, 5.0, 38.86), (0.0, 0.0, 38.86), (2.0, 35.71, 38.86),
                 (0.0, 0.0, 38.86), (5.0, 24.43, 38.86), (0.0, 0.0, 38.86), (10.0, 34.14, 38.86), (1.0, 4.86, 38.86), (0.0, 0.0, 38.86)) v(x, tx, t))
         SELECT m::text::bgnbd_model::text = m::text FROM m",
    );
    assert_eq!(same, Ok(Some(true)));
}

/// Invalid input raises 22023 from inside the backend (not a crash, not NaN).
#[pg_test(error = "recency (40) must not exceed T (39)")]
fn invalid_history_is_an_error() {
    Spi::get_one::<f64>("SELECT p_alive(bgnbd_model(0.243, 4.414, 0.793, 2.426), 2, 40, 39)").unwrap();
}
