//! Seeded, deterministic simulation of customers and their transactions from the purchase models,
//! for demos, load tests and parameter-recovery tests.
//!
//! Each customer i = 1..n is born at a time uniform in `[0, acquisition)`, makes the first purchase
//! at birth and is observed until `horizon`:
//! * BG/NBD: rate lambda ~ Gamma(r, rate alpha), dropout probability p ~ Beta(a, b); exponential
//!   gaps between purchases; after each *repeat* purchase the customer drops out with probability
//!   p (as `lifetimes.generate_data.beta_geometric_nbd_model`);
//! * MBG/NBD: the same, with the coin also flipped right after the first purchase;
//! * Pareto/NBD: lambda as above, dropout rate mu ~ Gamma(s, rate beta); the customer is active
//!   for an exponential lifetime of rate mu after birth.
//!
//! With Gamma-Gamma parameters (Fader & Hardie 2013, lifetimes' parameterisation) each customer
//! draws nu ~ Gamma(q, rate v) and every transaction (the first included) has value
//! z ~ Gamma(p, rate nu), so the customer's mean spend is p / nu.
//!
//! Reproducibility: every customer has two private Xoshiro256++ streams (timing, amounts) seeded
//! from (seed, customer id), so the same seed gives the same output, a customer's purchase times do
//! not depend on whether amounts are drawn, and a longer horizon only extends each customer's
//! history (the draws up to the old horizon are the same) - which the tests use to compare
//! predictions with the simulated future.

use crate::error::{finite, ClvError, Num, Result};
use crate::interrupt::Ticker;
use crate::params::{BgNbdParams, GammaGammaParams, MbgNbdParams, ModelParams, ParetoNbdParams};
use rand::Rng;
use rand::SeedableRng;
use rand_distr::{Beta, Distribution, Exp1, Gamma};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The purchase process to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimModel {
    BgNbd(BgNbdParams),
    MbgNbd(MbgNbdParams),
    ParetoNbd(ParetoNbdParams),
}

/// A simulation request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Simulation {
    pub model: SimModel,
    /// Draw transaction amounts from this spend model; amounts are 0 without it.
    pub spend: Option<GammaGammaParams>,
    pub n_customers: u64,
    /// Births are uniform in [0, acquisition); 0 puts every birth at time 0.
    pub acquisition: f64,
    /// End of observation (same time unit as the model), >= acquisition and > 0.
    pub horizon: f64,
    pub seed: u64,
}

/// One simulated customer, summarised at the horizon (continuous time, no rounding to periods).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimCustomer {
    pub customer_id: i64,
    pub birth: f64,
    /// Repeat purchases (the first purchase excluded).
    pub x: f64,
    /// Time from the first to the last purchase.
    pub tx: f64,
    /// Age at the horizon.
    pub t: f64,
    /// Mean amount of the repeat purchases (0 when x = 0 or without a spend model), as in
    /// lifetimes' summaries.
    pub mean_spend: f64,
    /// Latent: the time the customer became inactive, +inf if still active at the horizon.
    pub dropout: f64,
    /// Latent: the customer's true mean spend p / nu (0 without a spend model).
    pub true_mean_spend: f64,
}

fn invalid(msg: String) -> ClvError {
    ClvError::InvalidParameter(msg)
}

/// Most customers one simulation accepts (10^8): at ~100 ns per customer summary that is ten
/// seconds of work, and the SQL layer streams and checks for interrupts per row.
pub const MAX_CUSTOMERS: u64 = 100_000_000;

/// Most purchases one customer may be expected to make (10^7): the mean purchase rate r / alpha
/// (E[lambda], before any dropout) times the horizon. A customer's purchases are drawn one by one
/// (~30 ns each), so Pareto/NBD(r = 1e4, alpha = 1e-4) over a horizon of 1e6 would mean 1e14
/// draws per customer. Individual rates vary (lambda is Gamma distributed), so the per-customer
/// loops also check for interrupts every [`crate::interrupt::EVERY`] purchases.
pub const MAX_EXPECTED_PURCHASES: f64 = 1e7;

impl Simulation {
    /// Check parameters and the time window.
    pub fn validate(&self) -> Result<()> {
        match self.model {
            SimModel::BgNbd(p) => p.validate()?,
            SimModel::MbgNbd(p) => p.validate()?,
            SimModel::ParetoNbd(p) => p.validate()?,
        }
        if let Some(g) = self.spend {
            g.validate()?;
        }
        finite("acquisition window", self.acquisition)?;
        finite("horizon", self.horizon)?;
        if self.acquisition < 0.0 {
            return Err(invalid(format!(
                "acquisition window must be >= 0, got {}",
                Num(self.acquisition)
            )));
        }
        if self.horizon <= 0.0 || self.horizon < self.acquisition {
            return Err(invalid(format!(
                "horizon must be > 0 and at least the acquisition window ({}), got {}",
                Num(self.acquisition),
                Num(self.horizon)
            )));
        }
        if self.n_customers > MAX_CUSTOMERS {
            return Err(invalid(format!(
                "customers must be at most {MAX_CUSTOMERS} (10^8), got {}",
                self.n_customers
            )));
        }
        let (r, alpha) = match self.model {
            SimModel::BgNbd(p) => (p.r, p.alpha),
            SimModel::MbgNbd(p) => (p.r, p.alpha),
            SimModel::ParetoNbd(p) => (p.r, p.alpha),
        };
        let expected = r / alpha * self.horizon;
        if expected.is_nan() || expected > MAX_EXPECTED_PURCHASES {
            return Err(invalid(format!(
                "the expected number of purchases per customer, r / alpha x horizon = {} / {} x {} \
                 = {}, exceeds 10^7: shorten the horizon (or check the model's time unit)",
                Num(r),
                Num(alpha),
                Num(self.horizon),
                Num(expected)
            )));
        }
        Ok(())
    }

    /// Stream of transactions (customer_id, time, amount), ordered by customer then time;
    /// memory is constant per customer.
    pub fn transactions(&self) -> Result<Transactions> {
        self.validate()?;
        Ok(Transactions {
            sampler: Sampler::new(self),
            next_id: 1,
            cur: None,
            tick: Ticker::new(),
        })
    }

    /// Stream of per-customer summaries at the horizon (exactly the summaries of
    /// [`Simulation::transactions`], plus the latent dropout time and mean spend).
    pub fn customers(&self) -> Result<Customers> {
        self.validate()?;
        Ok(Customers {
            sampler: Sampler::new(self),
            next_id: 1,
            tick: Ticker::new(),
        })
    }

    /// All customer summaries (convenience for tests and small simulations).
    pub fn summaries(&self) -> Result<Vec<SimCustomer>> {
        Ok(self.customers()?.collect())
    }
}

/// Distributions shared by all customers.
#[derive(Debug, Clone)]
struct Sampler {
    sim: Simulation,
    lambda: Gamma<f64>,
    dropout_p: Option<Beta<f64>>,
    dropout_mu: Option<Gamma<f64>>,
    nu: Option<Gamma<f64>>,
    zero_coin: bool,
}

// Parameters are validated (finite, > 0), so the distributions can be built; a failure would be
// a bug, reported as an error rather than a panic.
fn gamma(shape: f64, rate: f64) -> Gamma<f64> {
    Gamma::new(shape, 1.0 / rate).unwrap_or_else(|_| Gamma::new(1.0, 1.0).expect("valid"))
}

impl Sampler {
    fn new(sim: &Simulation) -> Sampler {
        let (lambda, dropout_p, dropout_mu, zero_coin) = match sim.model {
            SimModel::BgNbd(p) => (gamma(p.r, p.alpha), Beta::new(p.a, p.b).ok(), None, false),
            SimModel::MbgNbd(p) => (gamma(p.r, p.alpha), Beta::new(p.a, p.b).ok(), None, true),
            SimModel::ParetoNbd(p) => (gamma(p.r, p.alpha), None, Some(gamma(p.s, p.beta)), false),
        };
        let nu = sim.spend.map(|g| gamma(g.q, g.v));
        Sampler {
            sim: *sim,
            lambda,
            dropout_p,
            dropout_mu,
            nu,
            zero_coin,
        }
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn stream(seed: u64, id: u64, which: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(splitmix(
        seed ^ splitmix(id.wrapping_mul(2).wrapping_add(which)),
    ))
}

/// One customer's generator.
#[derive(Debug, Clone)]
struct CustomerGen {
    id: i64,
    birth: f64,
    last: f64,
    lambda: f64,
    /// BG/MBG: dropout probability after purchases.
    p: f64,
    /// Pareto/NBD: end of the active lifetime (absolute time).
    death: f64,
    started: bool,
    done: bool,
    dropout: f64,
    amount_shape: f64,
    nu: f64,
    rng_t: Xoshiro256PlusPlus,
    rng_a: Xoshiro256PlusPlus,
}

impl CustomerGen {
    fn new(s: &Sampler, id: u64) -> CustomerGen {
        let mut rng_t = stream(s.sim.seed, id, 0);
        let mut rng_a = stream(s.sim.seed, id, 1);
        let birth = s.sim.acquisition * rng_t.gen::<f64>();
        let lambda = s.lambda.sample(&mut rng_t);
        let p = s.dropout_p.as_ref().map_or(0.0, |d| d.sample(&mut rng_t));
        let death = match &s.dropout_mu {
            Some(d) => {
                let mu: f64 = d.sample(&mut rng_t);
                let e: f64 = Exp1.sample(&mut rng_t);
                birth + e / mu
            }
            None => f64::INFINITY,
        };
        let (amount_shape, nu) = match (&s.nu, s.sim.spend) {
            (Some(d), Some(g)) => (g.p, d.sample(&mut rng_a).max(1e-300)),
            _ => (0.0, 0.0),
        };
        CustomerGen {
            id: id as i64,
            birth,
            last: birth,
            lambda,
            p,
            death,
            started: false,
            done: false,
            dropout: f64::INFINITY,
            amount_shape,
            nu,
            rng_t,
            rng_a,
        }
    }

    fn amount(&mut self) -> f64 {
        if self.amount_shape == 0.0 {
            return 0.0;
        }
        // z ~ Gamma(p, rate nu) = Gamma(p, 1) / nu.
        let g = Gamma::new(self.amount_shape, 1.0)
            .map(|d| d.sample(&mut self.rng_a))
            .unwrap_or(0.0);
        g / self.nu
    }

    /// Next transaction (time, amount) before `horizon`, or None when the customer is done.
    fn next(&mut self, s: &Sampler) -> Option<(f64, f64)> {
        if !self.started {
            self.started = true;
            if s.zero_coin && self.rng_t.gen::<f64>() < self.p {
                self.done = true;
                self.dropout = self.birth;
            }
            return Some((self.birth, self.amount()));
        }
        if self.done {
            return None;
        }
        let e: f64 = Exp1.sample(&mut self.rng_t);
        let t = self.last + e / self.lambda;
        // No purchase after the end of the active lifetime (Pareto/NBD) or after the horizon.
        let horizon = s.sim.horizon;
        if t > self.death.min(horizon) {
            self.done = true;
            if self.death <= horizon {
                self.dropout = self.death;
            }
            return None;
        }
        self.last = t;
        if s.dropout_p.is_some() && self.rng_t.gen::<f64>() < self.p {
            self.done = true;
            self.dropout = t;
        }
        Some((t, self.amount()))
    }
}

/// Iterator over simulated transactions, see [`Simulation::transactions`].
#[derive(Debug, Clone)]
pub struct Transactions {
    sampler: Sampler,
    next_id: u64,
    cur: Option<CustomerGen>,
    tick: Ticker,
}

impl Iterator for Transactions {
    type Item = (i64, f64, f64);

    fn next(&mut self) -> Option<(i64, f64, f64)> {
        self.tick.tick();
        loop {
            if let Some(c) = self.cur.as_mut() {
                if let Some((t, a)) = c.next(&self.sampler) {
                    return Some((c.id, t, a));
                }
            }
            if self.next_id > self.sampler.sim.n_customers {
                return None;
            }
            self.cur = Some(CustomerGen::new(&self.sampler, self.next_id));
            self.next_id += 1;
        }
    }
}

/// Iterator over simulated customer summaries, see [`Simulation::customers`]. It runs the same
/// per-customer generator as [`Transactions`], so it summarises exactly those transactions.
#[derive(Debug, Clone)]
pub struct Customers {
    sampler: Sampler,
    next_id: u64,
    tick: Ticker,
}

impl Iterator for Customers {
    type Item = SimCustomer;

    fn next(&mut self) -> Option<SimCustomer> {
        if self.next_id > self.sampler.sim.n_customers {
            return None;
        }
        let mut c = CustomerGen::new(&self.sampler, self.next_id);
        self.next_id += 1;
        let (birth, _first_amount) = c.next(&self.sampler).expect("first purchase at birth");
        let (mut x, mut last, mut spend) = (0.0, birth, 0.0);
        // One tick per customer and per purchase: a customer may make many purchases (the rate
        // is Gamma distributed around r / alpha).
        self.tick.tick();
        while let Some((t, a)) = c.next(&self.sampler) {
            self.tick.tick();
            x += 1.0;
            last = t;
            spend += a;
        }
        Some(SimCustomer {
            customer_id: c.id,
            birth,
            x,
            tx: last - birth,
            t: self.sampler.sim.horizon - birth,
            mean_spend: if x > 0.0 { spend / x } else { 0.0 },
            dropout: c.dropout,
            true_mean_spend: if c.amount_shape > 0.0 {
                c.amount_shape / c.nu
            } else {
                0.0
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::PurchaseModel;

    const BG: BgNbdParams = BgNbdParams {
        r: 0.242593,
        alpha: 4.413532,
        a: 0.792886,
        b: 2.425752,
    };
    const MBG: MbgNbdParams = MbgNbdParams {
        r: 0.525,
        alpha: 6.183,
        a: 0.891,
        b: 1.614,
    };
    const PARETO: ParetoNbdParams = ParetoNbdParams {
        r: 0.553,
        alpha: 10.578,
        s: 0.606,
        beta: 11.669,
    };
    const GG: GammaGammaParams = GammaGammaParams {
        p: 6.248802,
        q: 3.744588,
        v: 15.447748,
    };

    fn sim(model: SimModel, n: u64, acquisition: f64, horizon: f64, seed: u64) -> Simulation {
        Simulation {
            model,
            spend: Some(GG),
            n_customers: n,
            acquisition,
            horizon,
            seed,
        }
    }

    #[test]
    fn same_seed_same_output_and_customers_summarise_transactions() {
        let s = sim(SimModel::BgNbd(BG), 500, 12.0, 39.0, 7);
        let a: Vec<_> = s.transactions().unwrap().collect();
        let b: Vec<_> = s.transactions().unwrap().collect();
        assert_eq!(a, b);
        let c: Vec<_> = Simulation { seed: 8, ..s }
            .transactions()
            .unwrap()
            .collect();
        assert_ne!(a, c);
        // Amounts use their own stream: without a spend model the times are the same.
        let plain: Vec<_> = Simulation { spend: None, ..s }
            .transactions()
            .unwrap()
            .collect();
        assert_eq!(plain.len(), a.len());
        assert!(plain
            .iter()
            .zip(&a)
            .all(|(p, q)| p.0 == q.0 && p.1 == q.1 && p.2 == 0.0 && q.2 > 0.0));

        let summaries = s.summaries().unwrap();
        assert_eq!(summaries.len(), 500);
        let mut rows = a.iter().peekable();
        for c in &summaries {
            let mine: Vec<_> =
                std::iter::from_fn(|| rows.next_if(|r| r.0 == c.customer_id)).collect();
            assert_eq!(mine[0].1, c.birth, "first purchase at birth");
            assert!(c.birth >= 0.0 && c.birth < 12.0);
            assert!(mine.windows(2).all(|w| w[0].1 < w[1].1) && mine.last().unwrap().1 <= 39.0);
            assert_eq!(c.x, (mine.len() - 1) as f64);
            assert_eq!(c.tx, mine.last().unwrap().1 - c.birth);
            assert_eq!(c.t, 39.0 - c.birth);
            let repeat: f64 = mine[1..].iter().map(|r| r.2).sum();
            let want = if c.x > 0.0 { repeat / c.x } else { 0.0 };
            assert!((c.mean_spend - want).abs() <= 1e-12 * want);
        }
        assert!(rows.next().is_none());
    }

    /// mean(d) = 0 within 4.5 standard errors.
    #[track_caller]
    fn zero_mean(d: &[f64], what: &str) {
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let se = (var / n).sqrt();
        assert!(
            mean.abs() <= 4.5 * se,
            "{what}: mean difference {mean}, standard error {se}"
        );
    }

    /// Predictions at T against the simulated future: the same seed with a longer horizon
    /// extends every history, and under the model E[future | history] is the prediction.
    fn check_conditional<M: PurchaseModel>(m: &M, model: SimModel, seed: u64) {
        let (n, acq, big_t, future) = (40_000, 20.0, 39.0, 26.0);
        let now = sim(model, n, acq, big_t, seed).summaries().unwrap();
        let later = sim(model, n, acq, big_t + future, seed)
            .summaries()
            .unwrap();
        let (mut d_buy, mut d_alive_now, mut d_alive_later) = (vec![], vec![], vec![]);
        for (c, l) in now.iter().zip(&later) {
            assert_eq!(c.birth, l.birth);
            let pred = m
                .conditional_expected_purchases(future, c.x, c.tx, c.t)
                .unwrap();
            d_buy.push((l.x - c.x) - pred);
            let alive_now = if c.dropout.is_infinite() { 1.0 } else { 0.0 };
            d_alive_now.push(alive_now - m.p_alive(c.x, c.tx, c.t).unwrap());
            let alive_later = if l.dropout.is_infinite() { 1.0 } else { 0.0 };
            d_alive_later.push(alive_later - m.p_alive_at(c.x, c.tx, c.t, future).unwrap());
        }
        zero_mean(&d_buy, "future purchases");
        zero_mean(&d_alive_now, "alive at T");
        zero_mean(&d_alive_later, "alive at T + 26");
    }

    #[test]
    fn bgnbd_predictions_agree_with_simulation() {
        check_conditional(&BG, SimModel::BgNbd(BG), 11);
    }

    #[test]
    fn mbgnbd_predictions_agree_with_simulation() {
        check_conditional(&MBG, SimModel::MbgNbd(MBG), 12);
    }

    #[test]
    fn paretonbd_predictions_agree_with_simulation() {
        check_conditional(&PARETO, SimModel::ParetoNbd(PARETO), 13);
    }

    #[test]
    fn new_customer_distribution_agrees_with_the_models() {
        // Everybody born at 0 and observed for 39 periods: frequency distribution vs P(X(39) = n).
        let models: [(&dyn PurchaseModel, SimModel); 3] = [
            (&BG, SimModel::BgNbd(BG)),
            (&MBG, SimModel::MbgNbd(MBG)),
            (&PARETO, SimModel::ParetoNbd(PARETO)),
        ];
        for (i, (m, model)) in models.into_iter().enumerate() {
            let cs = sim(model, 40_000, 0.0, 39.0, 20 + i as u64)
                .summaries()
                .unwrap();
            let mean = m.expected_purchases_new(39.0).unwrap();
            zero_mean(
                &cs.iter().map(|c| c.x - mean).collect::<Vec<_>>(),
                "E[X(39)]",
            );
            for k in 0..3u32 {
                let p = m.prob_purchases(k, 39.0).unwrap();
                let d: Vec<f64> = cs
                    .iter()
                    .map(|c| if c.x == k as f64 { 1.0 - p } else { -p })
                    .collect();
                zero_mean(&d, "P(X(39) = k)");
            }
        }
    }

    #[test]
    fn gamma_gamma_spend_agrees_with_the_latent_means() {
        // E[true mean spend | x, observed mean] is the Gamma-Gamma prediction.
        let cs = sim(SimModel::BgNbd(BG), 40_000, 20.0, 39.0, 5)
            .summaries()
            .unwrap();
        let d: Vec<f64> = cs
            .iter()
            .map(|c| c.true_mean_spend - GG.conditional_expected_spend(c.x, c.mean_spend).unwrap())
            .collect();
        zero_mean(&d, "expected spend");
        assert!(cs.iter().filter(|c| c.x > 0.0).count() > 5_000);
    }

    #[test]
    fn invalid_requests_are_rejected() {
        let s = sim(SimModel::BgNbd(BG), 10, 12.0, 39.0, 1);
        assert!(Simulation { horizon: 10.0, ..s }.transactions().is_err());
        assert!(Simulation {
            horizon: f64::NAN,
            ..s
        }
        .transactions()
        .is_err());
        assert!(Simulation {
            acquisition: -1.0,
            ..s
        }
        .customers()
        .is_err());
        assert!(Simulation {
            model: SimModel::BgNbd(BgNbdParams { a: -1.0, ..BG }),
            ..s
        }
        .summaries()
        .is_err());
        assert_eq!(
            Simulation {
                n_customers: 0,
                ..s
            }
            .transactions()
            .unwrap()
            .count(),
            0
        );
    }

    #[test]
    fn sizes_are_capped_and_long_histories_can_be_cancelled() {
        use crate::interrupt::testing::cancelled_within;
        let invalid = |r: Result<Customers>| match r {
            Err(ClvError::InvalidParameter(m)) => m,
            other => panic!("{:?}", other.map(|_| ())),
        };
        // issue 8: ~1e8 purchases per period per customer over 1e6 periods.
        let heavy = ParetoNbdParams {
            r: 1e4,
            alpha: 1e-4,
            s: 1e-4,
            beta: 1e4,
        };
        let m = invalid(sim(SimModel::ParetoNbd(heavy), 1000, 1.0, 1e6, 1).customers());
        assert!(m.contains("10^7") && m.contains("1e14"), "{m}");
        // issue 8: 9223372036854775807 customers.
        let m = invalid(sim(SimModel::BgNbd(BG), i64::MAX as u64, 0.0, 38.86, 1).customers());
        assert!(m.contains("at most 100000000"), "{m}");
        assert!(sim(SimModel::BgNbd(BG), MAX_CUSTOMERS, 0.0, 38.86, 1)
            .validate()
            .is_ok());
        // At the cap of expected purchases a customer's history is long; the loop checks.
        let busy = ParetoNbdParams {
            r: 1e3,
            alpha: 1e-1,
            s: 1e-4,
            beta: 1e4,
        };
        let s = sim(SimModel::ParetoNbd(busy), 10, 0.0, 1000.0, 3);
        assert!(s.validate().is_ok());
        let (cancelled, took) = cancelled_within(|| s.customers().unwrap().next());
        assert!(cancelled && took.as_millis() < 100, "{took:?}");
        let (cancelled, took) = cancelled_within(|| s.transactions().unwrap().count());
        assert!(cancelled && took.as_millis() < 100, "{took:?}");
    }
}
