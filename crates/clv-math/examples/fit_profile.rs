//! Times the fits and CLV scoring on CSV exports (profiling aid for bench/README.md):
//!   cargo run -p clv-math --release --example fit_profile -- patterns.csv spend.csv
//! patterns.csv: frequency,recency,T,count; spend.csv: frequency,monetary_value.
use clv_math::fit::{fit_bgnbd, fit_gamma_gamma, CustomerRow, FitOptions, SpendRow};
use std::time::Instant;

fn read(path: &str) -> Vec<Vec<f64>> {
    std::fs::read_to_string(path)
        .expect("read csv")
        .lines()
        .map(|l| l.split(',').map(|v| v.parse().expect("number")).collect())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: Vec<CustomerRow> = read(&args[1])
        .into_iter()
        .map(|v| CustomerRow {
            x: v[0],
            tx: v[1],
            t: v[2],
            w: v[3],
        })
        .collect();
    let o = FitOptions::default();
    for _ in 0..3 {
        let t0 = Instant::now();
        let f = fit_bgnbd(&rows, &o).unwrap();
        println!(
            "bgnbd {} patterns: {:.1} ms, {} iterations, {:?}",
            rows.len(),
            t0.elapsed().as_secs_f64() * 1e3,
            f.iterations,
            f.params
        );
    }
    if let Some(p) = args.get(2) {
        let spend: Vec<SpendRow> = read(p)
            .into_iter()
            .map(|v| SpendRow {
                x: v[0],
                m: v[1],
                w: 1.0,
            })
            .collect();
        for _ in 0..3 {
            let t0 = Instant::now();
            let f = fit_gamma_gamma(&spend, &o).unwrap();
            println!(
                "gamma-gamma {} rows: {:.1} ms, {} iterations, {:?}",
                spend.len(),
                t0.elapsed().as_secs_f64() * 1e3,
                f.iterations,
                f.params
            );
        }
    }
}
