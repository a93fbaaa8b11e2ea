//! The persona adherence score, offline: a logistic regression on character and word n-grams
//! ([`crate::features`]) that tells the persona's own replies from generic ones, calibrated to
//! 0–100 by Platt scaling on a held-out share of the examples; beside it, the persona's rules
//! checked one by one (greeting, sign-off, marker phrases, forbidden phrases), so a score can
//! be explained.

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::Serialize;

use dataset::{Kind, Persona, Record};

use crate::error::{EvalError, Result};
use crate::features::{featurize, Sparse, BUCKETS};

/// Each class needs at least this many examples (some go to calibration).
pub const MIN_PER_CLASS: usize = 8;

#[derive(Debug, Clone, Serialize)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 penalty per epoch.
    pub l2: f32,
    /// Share of each class kept out of fitting, to calibrate the score on.
    pub calibration_share: f64,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions { epochs: 40, learning_rate: 0.5, l2: 1e-4, calibration_share: 0.25, seed: 42 }
    }
}

/// What training saw and how well the score separates the calibration examples.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub positives_fit: usize,
    pub negatives_fit: usize,
    pub positives_calibration: usize,
    pub negatives_calibration: usize,
    /// Area under the ROC curve on the calibration examples (1 = perfectly separated).
    pub calibration_auc: f64,
    /// Platt scaling: score = 100 / (1 + exp(a * decision + b)).
    pub platt_a: f64,
    pub platt_b: f64,
}

/// One reply's adherence: the calibrated voice score and the persona's rule checks.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Adherence {
    /// 0–100: how much the reply reads like the persona's own examples.
    pub score: f64,
    /// Present when the scorer knows the persona.
    pub rules: Option<RuleChecks>,
}

/// The persona's explicit rules, checked on one reply.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct RuleChecks {
    /// Opens with the persona's greeting (None: the persona has none).
    pub greeting: Option<bool>,
    /// Ends with the persona's sign-off (None: the persona has none).
    pub signoff: Option<bool>,
    pub markers_found: Vec<String>,
    pub markers_missing: Vec<String>,
    /// Forbidden phrases the reply contains (should be empty).
    pub forbidden_found: Vec<String>,
}

impl RuleChecks {
    pub fn check(persona: &Persona, reply: &str) -> RuleChecks {
        let text = collapse(reply);
        // The greeting's words count, not its punctuation ("Hi friend!" opens like "Hi friend,").
        let greeting = persona
            .greeting
            .as_deref()
            .map(collapse)
            .map(|g| g.trim_end_matches(|c: char| c.is_ascii_punctuation()).to_string())
            .filter(|g| !g.is_empty())
            .map(|g| text.starts_with(&g) && text[g.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric()));
        let signoff = persona
            .signoff
            .as_deref()
            .map(collapse)
            .filter(|s| !s.is_empty())
            .map(|s| text.trim_end_matches(|c: char| c.is_ascii_punctuation()).ends_with(s.trim_end_matches(|c: char| c.is_ascii_punctuation())));
        let (mut found, mut missing) = (Vec::new(), Vec::new());
        for m in persona.markers.iter().filter(|m| !m.trim().is_empty()) {
            if text.contains(&collapse(m)) {
                found.push(m.clone());
            } else {
                missing.push(m.clone());
            }
        }
        let forbidden_found = persona.forbidden_in(reply).into_iter().map(str::to_string).collect();
        RuleChecks { greeting, signoff, markers_found: found, markers_missing: missing, forbidden_found }
    }

    /// Share of the persona's marker phrases present, 0–100 (None: the persona lists none).
    pub fn marker_score(&self) -> Option<f64> {
        let n = self.markers_found.len() + self.markers_missing.len();
        (n > 0).then(|| 100.0 * self.markers_found.len() as f64 / n as f64)
    }

    /// (rules passed, rules checked): greeting, sign-off, each marker, and "no forbidden phrase".
    pub fn tally(&self) -> (usize, usize) {
        let mut pass = self.markers_found.len() + usize::from(self.forbidden_found.is_empty());
        let mut total = pass + self.markers_missing.len() + usize::from(!self.forbidden_found.is_empty());
        for b in [self.greeting, self.signoff].into_iter().flatten() {
            total += 1;
            pass += usize::from(b);
        }
        (pass, total)
    }
}

/// Lower case with every run of whitespace as one space.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The trained scorer.
#[derive(Debug, Clone)]
pub struct AdherenceScorer {
    weights: Vec<f32>,
    bias: f32,
    platt_a: f64,
    platt_b: f64,
    persona: Option<Persona>,
    report: TrainReport,
}

impl AdherenceScorer {
    /// Learns the persona's voice from `positives` (replies in the voice) against `negatives`
    /// (generic replies). Empty texts are left out. Deterministic for a given seed.
    pub fn train(positives: &[String], negatives: &[String], persona: Option<&Persona>, opts: &TrainOptions) -> Result<AdherenceScorer> {
        let keep = |v: &[String]| v.iter().filter(|s| !s.trim().is_empty()).cloned().collect::<Vec<_>>();
        let (pos, neg) = (keep(positives), keep(negatives));
        if pos.len() < MIN_PER_CLASS || neg.len() < MIN_PER_CLASS {
            return Err(EvalError::TooFewExamples { positives: pos.len(), negatives: neg.len(), min: MIN_PER_CLASS });
        }
        let (pos_fit, pos_cal) = split(&pos, opts.calibration_share, opts.seed);
        let (neg_fit, neg_cal) = split(&neg, opts.calibration_share, opts.seed.wrapping_add(1));
        let mut data: Vec<(Sparse, bool)> = pos_fit.iter().map(|t| (featurize(t), true)).collect();
        data.extend(neg_fit.iter().map(|t| (featurize(t), false)));
        let (weights, bias) = fit_logistic(&mut data, pos_fit.len(), neg_fit.len(), opts);
        let mut scorer = AdherenceScorer {
            weights,
            bias,
            platt_a: 0.0,
            platt_b: 0.0,
            persona: persona.cloned(),
            report: TrainReport {
                positives_fit: pos_fit.len(),
                negatives_fit: neg_fit.len(),
                positives_calibration: pos_cal.len(),
                negatives_calibration: neg_cal.len(),
                calibration_auc: 0.0,
                platt_a: 0.0,
                platt_b: 0.0,
            },
        };
        let dp: Vec<f64> = pos_cal.iter().map(|t| scorer.decision(t)).collect();
        let dn: Vec<f64> = neg_cal.iter().map(|t| scorer.decision(t)).collect();
        let (a, b) = platt(&dp, &dn);
        scorer.platt_a = a;
        scorer.platt_b = b;
        scorer.report.platt_a = a;
        scorer.report.platt_b = b;
        scorer.report.calibration_auc = auc(&dp, &dn);
        Ok(scorer)
    }

    /// The raw decision value (log-odds before calibration).
    pub fn decision(&self, text: &str) -> f64 {
        (featurize(text).dot(&self.weights) + self.bias) as f64
    }

    /// The calibrated voice score, 0–100.
    pub fn voice_score(&self, text: &str) -> f64 {
        let z = self.platt_a * self.decision(text) + self.platt_b;
        100.0 / (1.0 + z.exp())
    }

    /// Voice score and rule checks of one reply.
    pub fn score(&self, reply: &str) -> Adherence {
        Adherence { score: self.voice_score(reply), rules: self.persona.as_ref().map(|p| RuleChecks::check(p, reply)) }
    }

    pub fn report(&self) -> &TrainReport {
        &self.report
    }

    pub fn persona(&self) -> Option<&Persona> {
        self.persona.as_ref()
    }
}

/// The assistant replies of conversation records: the persona's own voice. SQL, replay and
/// style-sample records are left out, and so are empty replies.
pub fn persona_replies(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.kind == Kind::Chat)
        .flat_map(|r| r.replies())
        .map(|m| m.content.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Splits `items` into (rest, held out) with about `share` held out, at least one on each
/// side when there are two or more; a seeded shuffle decides which.
pub fn split<T: Clone>(items: &[T], share: f64, seed: u64) -> (Vec<T>, Vec<T>) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut n_out = (items.len() as f64 * share.clamp(0.0, 1.0)).round() as usize;
    if items.len() >= 2 {
        n_out = n_out.clamp(1, items.len() - 1);
    }
    let held: Vec<T> = order[..n_out].iter().map(|&i| items[i].clone()).collect();
    let rest: Vec<T> = order[n_out..].iter().map(|&i| items[i].clone()).collect();
    (rest, held)
}

/// Logistic regression by stochastic gradient descent, classes weighted to count equally.
fn fit_logistic(data: &mut [(Sparse, bool)], n_pos: usize, n_neg: usize, opts: &TrainOptions) -> (Vec<f32>, f32) {
    let mut w = vec![0f32; BUCKETS];
    let mut b = 0f32;
    let n = (n_pos + n_neg) as f32;
    let (w_pos, w_neg) = (n / (2.0 * n_pos as f32), n / (2.0 * n_neg as f32));
    let mut rng = StdRng::seed_from_u64(opts.seed);
    for epoch in 0..opts.epochs {
        let lr = opts.learning_rate / (1.0 + 0.1 * epoch as f32);
        data.shuffle(&mut rng);
        for (x, y) in data.iter() {
            let p = sigmoid(x.dot(&w) + b);
            let g = (p - if *y { 1.0 } else { 0.0 }) * if *y { w_pos } else { w_neg };
            for (&i, &v) in x.idx.iter().zip(&x.val) {
                w[i as usize] -= lr * g * v;
            }
            b -= lr * g;
        }
        let decay = 1.0 - lr * opts.l2;
        w.iter_mut().for_each(|x| *x *= decay);
    }
    (w, b)
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Platt scaling with Lin, Lin and Weng's Newton method and smoothed targets: (a, b) such that
/// P(persona | decision f) = 1 / (1 + exp(a f + b)).
fn platt(pos: &[f64], neg: &[f64]) -> (f64, f64) {
    let (np, nn) = (pos.len() as f64, neg.len() as f64);
    let hi = (np + 1.0) / (np + 2.0);
    let lo = 1.0 / (nn + 2.0);
    let pts: Vec<(f64, f64)> = pos.iter().map(|&f| (f, hi)).chain(neg.iter().map(|&f| (f, lo))).collect();
    let objective = |a: f64, b: f64| -> f64 {
        pts.iter()
            .map(|&(f, t)| {
                let z = f * a + b;
                if z >= 0.0 {
                    t * z + (-z).exp().ln_1p()
                } else {
                    (t - 1.0) * z + z.exp().ln_1p()
                }
            })
            .sum()
    };
    let (mut a, mut b) = (0.0, ((nn + 1.0) / (np + 1.0)).ln());
    let mut fval = objective(a, b);
    for _ in 0..100 {
        let (mut h11, mut h22, mut h21, mut g1, mut g2) = (1e-12, 1e-12, 0.0, 0.0, 0.0);
        for &(f, t) in &pts {
            let z = f * a + b;
            let (p, q) = if z >= 0.0 {
                let e = (-z).exp();
                (e / (1.0 + e), 1.0 / (1.0 + e))
            } else {
                let e = z.exp();
                (1.0 / (1.0 + e), e / (1.0 + e))
            };
            let d2 = p * q;
            h11 += f * f * d2;
            h22 += d2;
            h21 += f * d2;
            let d1 = t - p;
            g1 += f * d1;
            g2 += d1;
        }
        if g1.abs() < 1e-5 && g2.abs() < 1e-5 {
            break;
        }
        let det = h11 * h22 - h21 * h21;
        let da = -(h22 * g1 - h21 * g2) / det;
        let db = -(-h21 * g1 + h11 * g2) / det;
        let gd = g1 * da + g2 * db;
        let mut step = 1.0;
        while step >= 1e-10 {
            let (na, nb) = (a + step * da, b + step * db);
            let nf = objective(na, nb);
            if nf < fval + 1e-4 * step * gd {
                (a, b, fval) = (na, nb, nf);
                break;
            }
            step /= 2.0;
        }
        if step < 1e-10 {
            break;
        }
    }
    (a, b)
}

/// Area under the ROC curve: the chance that a random positive scores above a random
/// negative, ties counting half. NaN when either side is empty.
pub fn auc(pos: &[f64], neg: &[f64]) -> f64 {
    if pos.is_empty() || neg.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0.0;
    for p in pos {
        for n in neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::generic_replies;

    fn maggie() -> Persona {
        Persona::load(&crate::demo_path("coffee-roaster/persona.toml")).unwrap()
    }

    #[test]
    fn auc_counts_pairs_and_ties() {
        assert_eq!(auc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(auc(&[1.0], &[2.0]), 0.0);
        assert_eq!(auc(&[1.0, 3.0], &[1.0]), 0.75);
        assert!(auc(&[], &[1.0]).is_nan());
    }

    #[test]
    fn split_is_seeded_disjoint_and_keeps_both_sides() {
        let items: Vec<u32> = (0..20).collect();
        let (a, b) = split(&items, 0.25, 7);
        assert_eq!((a.len(), b.len()), (15, 5));
        assert_eq!(split(&items, 0.25, 7), (a.clone(), b.clone()));
        let mut all: Vec<u32> = a.iter().chain(&b).copied().collect();
        all.sort();
        assert_eq!(all, items);
        assert_eq!(split(&[1, 2], 0.0, 1).1.len(), 1);
        assert_eq!(split(&[1, 2], 1.0, 1).0.len(), 1);
    }

    #[test]
    fn platt_orders_and_bounds_probabilities() {
        let (a, b) = platt(&[1.0, 2.0, 3.0, 0.5], &[-1.0, -2.0, 0.0, -0.5]);
        let p = |f: f64| 1.0 / (1.0 + (a * f + b).exp());
        assert!(a < 0.0);
        assert!(p(3.0) > 0.8 && p(-2.0) < 0.2, "{} {}", p(3.0), p(-2.0));
    }

    #[test]
    fn rule_checks_explain_a_reply() {
        let p = maggie();
        let good = RuleChecks::check(&p, "Hi friend,\nThe Kenya is fresh from the drum on Friday.\nStay toasty,\nMaggie");
        assert_eq!(good.greeting, Some(true));
        assert_eq!(good.signoff, Some(true));
        assert!(good.markers_missing.is_empty(), "{good:?}");
        assert!(good.forbidden_found.is_empty());
        assert_eq!(good.tally(), (6, 6));
        // Flattened onto one line, as in the CSV, still counts.
        let flat = RuleChecks::check(&p, "Hi friend! Yes. Stay toasty, Maggie");
        assert_eq!((flat.greeting, flat.signoff), (Some(true), Some(true)));
        assert_eq!(RuleChecks::check(&p, "Hi friendly people").greeting, Some(false));
        let bad = RuleChecks::check(&p, "Dear Sir or Madam, we apologize for any inconvenience. Best regards");
        assert_eq!(bad.greeting, Some(false));
        assert_eq!(bad.signoff, Some(false));
        assert_eq!(bad.marker_score(), Some(0.0));
        assert_eq!(bad.forbidden_found.len(), 3, "{bad:?}");
        assert_eq!(bad.tally(), (0, 6));
    }

    #[test]
    fn too_few_examples_is_an_error_not_a_panic() {
        let few = vec!["Hi friend".to_string(); 3];
        let e = AdherenceScorer::train(&few, &generic_replies(), None, &TrainOptions::default()).unwrap_err();
        assert!(e.to_string().contains("too few"), "{e}");
    }
}
