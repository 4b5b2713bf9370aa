//! Named customer segments from model outputs: a documented rule list over per-customer signals.
//!
//! # Inputs
//!
//! Value-like signals enter as **percent ranks** in `[0, 1]`, exactly SQL's
//! `percent_rank() OVER (ORDER BY x)` = `(rank - 1) / (n - 1)` (0 = lowest, 1 = highest; see
//! [`percent_ranks`]), so the rules do not depend on the currency or on the prediction horizon. With
//! that definition "rank >= 0.8" selects exactly the top 20% of 10, 100 or 1000 distinct values, and
//! equal values share the rank of the *first* of them, so a tie group straddling a threshold falls
//! below it - the same tie rule as the value tiers. P(alive), the frequency and the discount share
//! are used as they are.
//!
//! # Rules, in order of precedence (the first that matches wins)
//!
//! 1. **One-Timers**: `frequency == 0` (no repeat purchase). The models know least about them (a
//!    BG/NBD customer without repeats even has P(alive) = 1), so no value or activity label is
//!    given on that basis.
//! 2. **At Risk**: `past_value_rank >= at_risk_min_past_value_rank` (0.7: top 30% by past value)
//!    and `p_alive <= at_risk_max_p_alive` (0.3). Checked before Champions so that, if thresholds
//!    are changed to overlap, retention urgency wins.
//! 3. **Champions**: `clv_rank >= champion_min_clv_rank` (0.8: top 20% by predicted CLV, the
//!    default "high" value tier) and `p_alive >= champion_min_p_alive` (0.7).
//! 4. **Discount Seekers**: only when a discount share is supplied, `discount_share >=
//!    discount_min_share` (0.5: at least half of the purchases used a discount). After the value
//!    and risk rules, because those call for an action regardless of how the customer pays.
//! 5. **Silent Potentials**: low value today, `past_value_rank <= silent_max_past_value_rank`
//!    (0.5: bottom half), yet likely alive, `p_alive >= silent_min_p_alive` (0.8), and expected to
//!    buy, `expected_purchases_rank >= silent_min_expected_purchases_rank` (0.5: top half).
//! 6. **Regulars**: everyone else.
//!
//! All "min" thresholds are inclusive (`>=`), all "max" thresholds inclusive (`<=`).

use crate::error::{ClvError, Result};
use crate::interrupt::{self, Ticker};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The named segments, in order of rule precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NamedSegment {
    OneTimers,
    AtRisk,
    Champions,
    DiscountSeekers,
    SilentPotentials,
    Regulars,
}

impl NamedSegment {
    pub const ALL: [NamedSegment; 6] = [
        NamedSegment::OneTimers,
        NamedSegment::AtRisk,
        NamedSegment::Champions,
        NamedSegment::DiscountSeekers,
        NamedSegment::SilentPotentials,
        NamedSegment::Regulars,
    ];

    /// The label shown to SQL users.
    pub fn label(self) -> &'static str {
        match self {
            NamedSegment::OneTimers => "One-Timers",
            NamedSegment::AtRisk => "At Risk",
            NamedSegment::Champions => "Champions",
            NamedSegment::DiscountSeekers => "Discount Seekers",
            NamedSegment::SilentPotentials => "Silent Potentials",
            NamedSegment::Regulars => "Regulars",
        }
    }
}

impl fmt::Display for NamedSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One customer's signals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CustomerSignals {
    /// Repeat purchases in the observation period (`lifetimes` frequency), >= 0.
    pub frequency: f64,
    /// Probability that the customer is still alive, in [0, 1].
    pub p_alive: f64,
    /// Percent rank of the predicted CLV, in [0, 1].
    pub clv_rank: f64,
    /// Percent rank of the historical value (past spend), in [0, 1].
    pub past_value_rank: f64,
    /// Percent rank of the expected number of purchases over the horizon, in [0, 1].
    pub expected_purchases_rank: f64,
    /// Share of purchases made with a discount, in [0, 1], when the data has it.
    pub discount_share: Option<f64>,
}

/// Thresholds of the rules (see the module documentation); `Default` gives the documented values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SegmentRules {
    pub at_risk_min_past_value_rank: f64,
    pub at_risk_max_p_alive: f64,
    pub champion_min_clv_rank: f64,
    pub champion_min_p_alive: f64,
    pub discount_min_share: f64,
    pub silent_max_past_value_rank: f64,
    pub silent_min_p_alive: f64,
    pub silent_min_expected_purchases_rank: f64,
}

impl Default for SegmentRules {
    fn default() -> Self {
        SegmentRules {
            at_risk_min_past_value_rank: 0.7,
            at_risk_max_p_alive: 0.3,
            champion_min_clv_rank: 0.8,
            champion_min_p_alive: 0.7,
            discount_min_share: 0.5,
            silent_max_past_value_rank: 0.5,
            silent_min_p_alive: 0.8,
            silent_min_expected_purchases_rank: 0.5,
        }
    }
}

fn unit(name: &str, v: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(ClvError::InvalidParameter(format!(
            "{name} must be between 0 and 1, got {v}"
        )))
    }
}

impl SegmentRules {
    /// Every threshold must lie in [0, 1].
    pub fn validate(&self) -> Result<()> {
        unit(
            "at_risk_min_past_value_rank",
            self.at_risk_min_past_value_rank,
        )?;
        unit("at_risk_max_p_alive", self.at_risk_max_p_alive)?;
        unit("champion_min_clv_rank", self.champion_min_clv_rank)?;
        unit("champion_min_p_alive", self.champion_min_p_alive)?;
        unit("discount_min_share", self.discount_min_share)?;
        unit(
            "silent_max_past_value_rank",
            self.silent_max_past_value_rank,
        )?;
        unit("silent_min_p_alive", self.silent_min_p_alive)?;
        unit(
            "silent_min_expected_purchases_rank",
            self.silent_min_expected_purchases_rank,
        )?;
        Ok(())
    }
}

impl CustomerSignals {
    /// Every signal must be in its domain (NaN never is).
    pub fn validate(&self) -> Result<()> {
        if !(self.frequency.is_finite() && self.frequency >= 0.0) {
            return Err(ClvError::InvalidParameter(format!(
                "frequency must be a finite number >= 0, got {}",
                self.frequency
            )));
        }
        unit("p_alive", self.p_alive)?;
        unit("clv_rank", self.clv_rank)?;
        unit("past_value_rank", self.past_value_rank)?;
        unit("expected_purchases_rank", self.expected_purchases_rank)?;
        if let Some(d) = self.discount_share {
            unit("discount_share", d)?;
        }
        Ok(())
    }
}

/// The named segment of one customer under `rules` (first matching rule of the documented list).
///
/// Errors: a signal or threshold outside its domain.
pub fn named_segment(s: &CustomerSignals, rules: &SegmentRules) -> Result<NamedSegment> {
    s.validate()?;
    rules.validate()?;
    let seg = if s.frequency == 0.0 {
        NamedSegment::OneTimers
    } else if s.past_value_rank >= rules.at_risk_min_past_value_rank
        && s.p_alive <= rules.at_risk_max_p_alive
    {
        NamedSegment::AtRisk
    } else if s.clv_rank >= rules.champion_min_clv_rank && s.p_alive >= rules.champion_min_p_alive {
        NamedSegment::Champions
    } else if s
        .discount_share
        .is_some_and(|d| d >= rules.discount_min_share)
    {
        NamedSegment::DiscountSeekers
    } else if s.past_value_rank <= rules.silent_max_past_value_rank
        && s.p_alive >= rules.silent_min_p_alive
        && s.expected_purchases_rank >= rules.silent_min_expected_purchases_rank
    {
        NamedSegment::SilentPotentials
    } else {
        NamedSegment::Regulars
    };
    Ok(seg)
}

/// SQL's `percent_rank() OVER (ORDER BY value)` for a whole partition, in input order:
/// `(rank - 1) / (n - 1)` where `rank` is 1 + the number of strictly smaller values; 0 for a single
/// value. `None`/NaN values get `None` and are not counted (as SQL NULLs are sorted apart; here they
/// are simply excluded).
///
/// Errors: an infinite value.
pub fn percent_ranks(values: &[Option<f64>]) -> Result<Vec<Option<f64>>> {
    let mut sorted: Vec<f64> = Vec::with_capacity(values.len());
    for v in values.iter().flatten().filter(|v| !v.is_nan()) {
        if v.is_infinite() {
            return Err(ClvError::InvalidParameter(format!(
                "values to rank must be finite, got {v}"
            )));
        }
        sorted.push(*v);
    }
    interrupt::sort_by(&mut sorted, f64::total_cmp);
    let n = sorted.len();
    let mut tick = Ticker::new();
    Ok(values
        .iter()
        .inspect(|_| tick.tick())
        .map(|v| match v {
            Some(x) if !x.is_nan() => {
                if n <= 1 {
                    Some(0.0)
                } else {
                    let below = sorted.partition_point(|&y| y < *x);
                    Some(below as f64 / (n - 1) as f64)
                }
            }
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use NamedSegment::*;

    // A customer who matches no rule under the defaults.
    fn regular() -> CustomerSignals {
        CustomerSignals {
            frequency: 3.0,
            p_alive: 0.6,
            clv_rank: 0.6,
            past_value_rank: 0.6,
            expected_purchases_rank: 0.6,
            discount_share: None,
        }
    }

    fn seg(s: CustomerSignals) -> NamedSegment {
        named_segment(&s, &SegmentRules::default()).unwrap()
    }

    #[test]
    fn each_rule_fires_on_its_own() {
        assert_eq!(seg(regular()), Regulars);
        assert_eq!(
            seg(CustomerSignals {
                frequency: 0.0,
                ..regular()
            }),
            OneTimers
        );
        assert_eq!(
            seg(CustomerSignals {
                past_value_rank: 0.7,
                p_alive: 0.3,
                ..regular()
            }),
            AtRisk
        );
        assert_eq!(
            seg(CustomerSignals {
                clv_rank: 0.8,
                p_alive: 0.7,
                ..regular()
            }),
            Champions
        );
        assert_eq!(
            seg(CustomerSignals {
                discount_share: Some(0.5),
                ..regular()
            }),
            DiscountSeekers
        );
        assert_eq!(
            seg(CustomerSignals {
                past_value_rank: 0.5,
                p_alive: 0.8,
                expected_purchases_rank: 0.5,
                ..regular()
            }),
            SilentPotentials
        );
    }

    #[test]
    fn thresholds_are_inclusive_and_just_outside_fails() {
        let just_below = 1e-9;
        assert_eq!(
            seg(CustomerSignals {
                past_value_rank: 0.7 - just_below,
                p_alive: 0.3,
                ..regular()
            }),
            Regulars
        );
        assert_eq!(
            seg(CustomerSignals {
                past_value_rank: 0.7,
                p_alive: 0.3 + just_below,
                ..regular()
            }),
            Regulars
        );
        assert_eq!(
            seg(CustomerSignals {
                clv_rank: 0.8,
                p_alive: 0.7 - just_below,
                ..regular()
            }),
            Regulars
        );
        assert_eq!(
            seg(CustomerSignals {
                discount_share: Some(0.5 - just_below),
                ..regular()
            }),
            Regulars
        );
        // Silent Potentials needs all three conditions.
        let silent = CustomerSignals {
            past_value_rank: 0.2,
            p_alive: 0.9,
            expected_purchases_rank: 0.9,
            ..regular()
        };
        assert_eq!(seg(silent), SilentPotentials);
        for s in [
            CustomerSignals {
                past_value_rank: 0.5 + just_below,
                ..silent
            },
            CustomerSignals {
                p_alive: 0.8 - just_below,
                ..silent
            },
            CustomerSignals {
                expected_purchases_rank: 0.5 - just_below,
                ..silent
            },
        ] {
            assert_eq!(seg(s), Regulars, "{s:?}");
        }
    }

    #[test]
    fn precedence_follows_the_documented_order() {
        // Matches every rule at once under loosened thresholds.
        let all = CustomerSignals {
            frequency: 0.0,
            p_alive: 0.5,
            clv_rank: 0.9,
            past_value_rank: 0.5,
            expected_purchases_rank: 0.9,
            discount_share: Some(0.9),
        };
        let loose = SegmentRules {
            at_risk_min_past_value_rank: 0.5,
            at_risk_max_p_alive: 0.5,
            champion_min_clv_rank: 0.5,
            champion_min_p_alive: 0.5,
            discount_min_share: 0.5,
            silent_max_past_value_rank: 0.5,
            silent_min_p_alive: 0.5,
            silent_min_expected_purchases_rank: 0.5,
        };
        let run = |s: CustomerSignals| named_segment(&s, &loose).unwrap();
        assert_eq!(run(all), OneTimers);
        let s = CustomerSignals {
            frequency: 2.0,
            ..all
        };
        assert_eq!(run(s), AtRisk);
        let s = CustomerSignals {
            past_value_rank: 0.4,
            ..s
        };
        assert_eq!(run(s), Champions);
        let s = CustomerSignals { clv_rank: 0.4, ..s };
        assert_eq!(run(s), DiscountSeekers);
        let s = CustomerSignals {
            discount_share: None,
            ..s
        };
        assert_eq!(run(s), SilentPotentials);
        let s = CustomerSignals { p_alive: 0.4, ..s };
        assert_eq!(run(s), Regulars);
        // A high-value discount user is a Champion first.
        assert_eq!(
            seg(CustomerSignals {
                clv_rank: 0.95,
                p_alive: 0.9,
                discount_share: Some(1.0),
                ..regular()
            }),
            Champions
        );
    }

    #[test]
    fn invalid_signals_and_rules() {
        let bad = [
            CustomerSignals {
                frequency: -1.0,
                ..regular()
            },
            CustomerSignals {
                frequency: f64::NAN,
                ..regular()
            },
            CustomerSignals {
                p_alive: 1.1,
                ..regular()
            },
            CustomerSignals {
                clv_rank: f64::NAN,
                ..regular()
            },
            CustomerSignals {
                past_value_rank: -0.1,
                ..regular()
            },
            CustomerSignals {
                expected_purchases_rank: 2.0,
                ..regular()
            },
            CustomerSignals {
                discount_share: Some(f64::NAN),
                ..regular()
            },
        ];
        for s in bad {
            assert!(
                matches!(
                    named_segment(&s, &SegmentRules::default()),
                    Err(ClvError::InvalidParameter(_))
                ),
                "{s:?}"
            );
        }
        let rules = SegmentRules {
            silent_min_p_alive: 1.5,
            ..SegmentRules::default()
        };
        assert!(named_segment(&regular(), &rules).is_err());
        assert_eq!(OneTimers.to_string(), "One-Timers");
        assert_eq!(NamedSegment::ALL.len(), 6);
    }

    #[test]
    fn percent_ranks_match_sql_and_select_exact_shares() {
        let v = [
            Some(10.0),
            None,
            Some(20.0),
            Some(20.0),
            Some(5.0),
            Some(f64::NAN),
        ];
        // Sorted: 5, 10, 20, 20 -> ranks 1, 2, 3, 3 -> (rank - 1) / 3.
        assert_eq!(
            percent_ranks(&v).unwrap(),
            vec![
                Some(1.0 / 3.0),
                None,
                Some(2.0 / 3.0),
                Some(2.0 / 3.0),
                Some(0.0),
                None
            ]
        );
        assert_eq!(percent_ranks(&[Some(3.0)]).unwrap(), vec![Some(0.0)]);
        assert!(percent_ranks(&[Some(f64::INFINITY)]).is_err());
        for n in [10usize, 100, 1000] {
            let v: Vec<Option<f64>> = (0..n).map(|i| Some(((i * 7919) % n) as f64)).collect();
            let r = percent_ranks(&v).unwrap();
            let count = |pred: &dyn Fn(f64) -> bool| r.iter().filter(|x| pred(x.unwrap())).count();
            assert_eq!(count(&|x| x >= 0.8), n / 5, "top 20% of {n}");
            assert_eq!(count(&|x| x >= 0.7), 3 * n / 10, "top 30% of {n}");
            assert_eq!(count(&|x| x <= 0.5), n / 2, "bottom 50% of {n}");
        }
    }
}
