//! Text to a sparse feature vector: character n-grams (2 to 5, with start and end marks, so
//! an opening greeting and a closing sign-off are features of their own) and word unigrams and
//! bigrams, hashed into a fixed number of buckets, counts damped as `1 + ln(count)`, the
//! whole vector scaled to unit length.

use std::collections::HashMap;

/// log2 of the number of hash buckets.
pub const BUCKET_BITS: u32 = 18;
pub const BUCKETS: usize = 1 << BUCKET_BITS;

/// A sparse vector: bucket indices (sorted, distinct) and their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sparse {
    pub idx: Vec<u32>,
    pub val: Vec<f32>,
}

impl Sparse {
    pub fn dot(&self, dense: &[f32]) -> f32 {
        self.idx.iter().zip(&self.val).map(|(&i, &v)| dense[i as usize] * v).sum()
    }
}

/// Lower case, runs of blanks as one space, runs containing a line break as one `\n`.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank: Option<bool> = None; // Some(has_newline) while inside a whitespace run
    for c in text.trim().chars() {
        if c.is_whitespace() {
            let nl = blank.unwrap_or(false) || c == '\n';
            blank = Some(nl);
            continue;
        }
        if let Some(nl) = blank.take() {
            out.push(if nl { '\n' } else { ' ' });
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// FNV-1a, 64 bits: stable across platforms and Rust versions (unlike `DefaultHasher`).
fn fnv1a(ns: u8, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&ns).chain(bytes) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The feature vector of a text. An empty text gives an empty vector.
pub fn featurize(text: &str) -> Sparse {
    let norm = normalise(text);
    if norm.is_empty() {
        return Sparse::default();
    }
    let mut counts: HashMap<u32, f32> = HashMap::new();
    let mut add = |ns: u8, s: &str| {
        let b = (fnv1a(ns, s.as_bytes()) as usize & (BUCKETS - 1)) as u32;
        *counts.entry(b).or_insert(0.0) += 1.0;
    };
    // Character n-grams over the marked text: '\u{2}' starts it, '\u{3}' ends it.
    let chars: Vec<char> = std::iter::once('\u{2}').chain(norm.chars()).chain(std::iter::once('\u{3}')).collect();
    let mut buf = String::new();
    for n in 2..=5usize {
        for w in chars.windows(n) {
            buf.clear();
            buf.extend(w);
            add(n as u8, &buf);
        }
    }
    // Words: letters, digits and apostrophes.
    let words: Vec<&str> = norm.split(|c: char| !(c.is_alphanumeric() || c == '\'')).filter(|w| !w.is_empty()).collect();
    for w in &words {
        add(b'w', w);
    }
    for pair in words.windows(2) {
        buf.clear();
        buf.push_str(pair[0]);
        buf.push(' ');
        buf.push_str(pair[1]);
        add(b'b', &buf);
    }
    let mut items: Vec<(u32, f32)> = counts.into_iter().map(|(i, c)| (i, 1.0 + c.ln())).collect();
    items.sort_unstable_by_key(|x| x.0);
    let norm2: f32 = items.iter().map(|x| x.1 * x.1).sum::<f32>().sqrt();
    if norm2 > 0.0 {
        for x in &mut items {
            x.1 /= norm2;
        }
    }
    Sparse { idx: items.iter().map(|x| x.0).collect(), val: items.iter().map(|x| x.1).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_blanks() {
        assert_eq!(normalise("  Hi  Friend,\n\n  Stay\tToasty "), "hi friend,\nstay toasty");
    }

    #[test]
    fn unit_length_sorted_and_deterministic() {
        let a = featurize("Hi friend, fresh from the drum.");
        assert!(a.idx.windows(2).all(|w| w[0] < w[1]));
        let len: f32 = a.val.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((len - 1.0).abs() < 1e-5);
        assert_eq!(a, featurize("hi   FRIEND, fresh from the drum."));
        assert_ne!(a, featurize("Dear customer, thank you."));
        assert!(featurize("").idx.is_empty());
        assert!(featurize(" \n ").idx.is_empty());
    }

    #[test]
    fn similar_texts_share_more_than_different_ones() {
        let dot = |a: &Sparse, b: &Sparse| {
            let mut dense = vec![0f32; BUCKETS];
            for (&i, &v) in b.idx.iter().zip(&b.val) {
                dense[i as usize] = v;
            }
            a.dot(&dense)
        };
        let a = featurize("Hi friend,\nThe Kenya is fresh from the drum.\nStay toasty,\nMaggie");
        let b = featurize("Hi friend,\nYour box ships Friday.\nStay toasty,\nMaggie");
        let c = featurize("Thank you for contacting us. We apologize for any inconvenience.");
        assert!(dot(&a, &b) > 2.0 * dot(&a, &c), "{} vs {}", dot(&a, &b), dot(&a, &c));
    }
}
