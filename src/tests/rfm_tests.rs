
#[pg_test]
fn rfm_matches_lifetimes_small_example() {
    let row = Spi::get_three::<f64, f64, f64>(
        "SELECT frequency(s), recency(s, 'week'), tenure(s, 'week') FROM (
           SELECT rfm(ts, amount, '1997-09-30') AS s FROM (VALUES
             ('1997-01-01'::date, 29.33::float8), ('1997-01-18', 29.73), ('1997-08-02', 14.96), ('1997-12-12', 26.48)) t(ts, amount)) q",
    )
    .unwrap();
    assert_eq!(row.0, Some(2.0));
    assert!((row.1.unwrap() - 213.0 / 7.0).abs() < 1e-12);
    assert!((row.2.unwrap() - 272.0 / 7.0).abs() < 1e-12);
}
