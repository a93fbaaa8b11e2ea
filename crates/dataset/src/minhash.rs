//! MinHash signatures over word shingles, with LSH banding to find near-duplicate candidates.

use std::collections::HashMap;

pub const HASHES: usize = 64;
const BANDS: usize = 16;
const ROWS: usize = HASHES / BANDS;

pub type Signature = [u32; HASHES];

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Lower-cased words of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| w.to_lowercase()).collect()
}

/// A stable 64-bit hash of the normalised text (for exact duplicates).
pub fn exact_key(text: &str) -> u64 {
    exact_key_of(&words(text))
}

/// [`exact_key`] of already split words.
pub fn exact_key_of(w: &[String]) -> u64 {
    fnv1a(w.join(" ").as_bytes())
}

/// The MinHash signature of a text's word 3-shingles (or its words, for very short texts).
pub fn signature(text: &str) -> Option<Signature> {
    signature_of(&words(text))
}

/// [`signature`] of already split words.
pub fn signature_of(w: &[String]) -> Option<Signature> {
    if w.is_empty() {
        return None;
    }
    let shingles: Vec<u64> = if w.len() < 3 {
        w.iter().map(|x| fnv1a(x.as_bytes())).collect()
    } else {
        w.windows(3).map(|s| fnv1a(s.join(" ").as_bytes())).collect()
    };
    let mut sig = [u32::MAX; HASHES];
    for (k, slot) in sig.iter_mut().enumerate() {
        let a = splitmix(k as u64 * 2 + 1) | 1;
        let b = splitmix(k as u64 * 2 + 2);
        for &s in &shingles {
            let h = (a.wrapping_mul(s).wrapping_add(b) >> 32) as u32;
            if h < *slot {
                *slot = h;
            }
        }
    }
    Some(sig)
}

/// Estimated Jaccard similarity of two signatures.
pub fn similarity(a: &Signature, b: &Signature) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / HASHES as f64
}

/// An LSH index: adds signatures one by one and returns the most similar earlier one.
///
/// Memory is kept small (records can number in the millions): each band's bucket holds only the
/// newest slot, and slots of one bucket are chained through `next`.
#[derive(Default)]
pub struct Index {
    heads: HashMap<u64, u32>,
    /// `next[slot * BANDS + band]`: the previous slot in the same bucket (`u32::MAX`: none).
    next: Vec<u32>,
    sigs: Vec<Signature>,
    ids: Vec<u32>,
}

impl Index {
    /// Adds `sig` under `id`; returns the best earlier match at or above `threshold`.
    pub fn add(&mut self, id: usize, sig: Signature, threshold: f64) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        let slot = self.sigs.len() as u32;
        for band in 0..BANDS {
            let mut bytes = [0u8; ROWS * 4 + 1];
            bytes[0] = band as u8;
            for r in 0..ROWS {
                bytes[1 + r * 4..1 + r * 4 + 4].copy_from_slice(&sig[band * ROWS + r].to_le_bytes());
            }
            let key = fnv1a(&bytes);
            let prev = self.heads.insert(key, slot).unwrap_or(u32::MAX);
            self.next.push(prev);
            // Walk the chain, newest first and bounded: a crowded bucket (boilerplate shared by
            // many records) costs at most 8 comparisons a band. A candidate met in several bands is
            // simply compared again; that is cheaper than remembering which were seen.
            let mut other = prev;
            let mut steps = 0;
            while other != u32::MAX && steps < 8 {
                let s = similarity(&sig, &self.sigs[other as usize]);
                if s >= threshold && best.is_none_or(|(_, b)| s > b) {
                    best = Some((self.ids[other as usize] as usize, s));
                }
                other = self.next[other as usize * BANDS + band];
                steps += 1;
            }
        }
        self.sigs.push(sig);
        self.ids.push(id as u32);
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_texts_match_and_far_ones_do_not() {
        let a = "Hi friend, your beans were roasted on Tuesday and ship tomorrow morning by post. Stay toasty, Maggie";
        let b = "Hi friend, your beans were roasted on Tuesday and ship tomorrow morning by post! Stay toasty, Maggie.";
        let c = "The grinder should be set to a medium-fine grind for an aeropress, about like table salt.";
        let (sa, sb, sc) = (signature(a).unwrap(), signature(b).unwrap(), signature(c).unwrap());
        assert!(similarity(&sa, &sb) > 0.9);
        assert!(similarity(&sa, &sc) < 0.2);
        let mut idx = Index::default();
        assert_eq!(idx.add(0, sa, 0.8), None);
        assert_eq!(idx.add(1, sc, 0.8), None);
        assert_eq!(idx.add(2, sb, 0.8).map(|x| x.0), Some(0));
        assert_eq!(exact_key("Hello,  World"), exact_key("hello world!"));
    }
}
