//! The adherence scorer on the coffee-roaster demo: trained on part of Maggie's replies and
//! the built-in generic replies, measured on the rest of both.

mod common;

use eval::adherence::split;
use eval::{auc, generic_replies, AdherenceScorer, TrainOptions};

#[test]
fn held_out_persona_replies_score_high_and_generic_ones_low() {
    let pos = common::maggie_replies();
    let neg = generic_replies();
    assert!(pos.len() > 200, "{} replies read from the demo folder", pos.len());
    let (pos_train, pos_test) = split(&pos, 0.25, 11);
    let (neg_train, neg_test) = split(&neg, 0.25, 12);
    let scorer = AdherenceScorer::train(&pos_train, &neg_train, Some(&common::maggie()), &TrainOptions::default()).unwrap();

    let dp: Vec<f64> = pos_test.iter().map(|t| scorer.decision(t)).collect();
    let dn: Vec<f64> = neg_test.iter().map(|t| scorer.decision(t)).collect();
    let a = auc(&dp, &dn);
    let sp: Vec<f64> = pos_test.iter().map(|t| scorer.voice_score(t)).collect();
    let sn: Vec<f64> = neg_test.iter().map(|t| scorer.voice_score(t)).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    eprintln!(
        "holdout: {} persona, {} generic; AUC {:.4}; persona mean {:.1} median {:.1}; generic mean {:.1} median {:.1}; training: {:?}",
        pos_test.len(),
        neg_test.len(),
        a,
        mean(&sp),
        median(&sp),
        mean(&sn),
        median(&sn),
        scorer.report()
    );
    assert!(a >= 0.95, "AUC {a}");
    assert!(mean(&sp) >= 70.0 && median(&sp) >= 80.0, "persona replies: mean {} median {}", mean(&sp), median(&sp));
    assert!(mean(&sn) <= 30.0 && median(&sn) <= 20.0, "generic replies: mean {} median {}", mean(&sn), median(&sn));

    // Without the greeting and the sign-off, the voice is still told apart from generic text.
    let strip = |t: &String| {
        let lower = t.to_lowercase();
        let start = lower.find("hi friend").map(|i| i + "hi friend".len() + 1).unwrap_or(0).min(t.len());
        let end = lower.rfind("stay toasty").unwrap_or(t.len()).max(start);
        t.get(start..end).unwrap_or(t).to_string()
    };
    let ds: Vec<f64> = pos_test.iter().map(|t| scorer.decision(&strip(t))).collect();
    let a2 = auc(&ds, &dn);
    eprintln!("holdout without greeting and sign-off: AUC {a2:.4}");
    assert!(a2 >= 0.85, "AUC without greeting and sign-off {a2}");
}

#[test]
fn new_replies_in_and_out_of_voice() {
    let scorer = common::scorer();
    // Written for this test, not in the demo data.
    let on = "Hi friend,\nThe Woodstove is back on Friday, fresh from the drum, and it makes a cozy cup with a splash of milk. Reply with your order number and I'll add a bag.\nStay toasty,\nMaggie";
    let off = "Thank you for your message. We have received your inquiry and will respond within two business days. Kind regards, Customer Care";
    let (a, b) = (scorer.score(on), scorer.score(off));
    eprintln!("on-voice {:.1}, off-voice {:.1}", a.score, b.score);
    assert!(a.score > 80.0 && b.score < 20.0, "{a:?} {b:?}");
    let rules = a.rules.unwrap();
    assert_eq!((rules.greeting, rules.signoff), (Some(true), Some(true)));
    assert_eq!(rules.tally(), (6, 6));
    assert_eq!(b.rules.unwrap().greeting, Some(false));
}

#[test]
fn training_is_deterministic() {
    let (a, b) = (common::scorer(), common::scorer());
    let text = "Hi friend, the Kenya ships Tuesday.";
    assert_eq!(a.decision(text), b.decision(text));
    assert!(a.report().calibration_auc > 0.9, "{:?}", a.report());
}
