//! The holdout split: seeded and grouped. A group's side depends only on the seed and its id, so
//! one thread or file never lands on both sides, and adding data never moves existing groups.

/// A stable 64-bit hash (FNV-1a then a mixer), the same on every machine and Rust version.
fn stable_hash(seed: u64, s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for &b in s.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// True when the group belongs to the holdout set.
pub fn in_holdout(group: &str, seed: u64, fraction: f64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    if fraction >= 1.0 {
        return true;
    }
    (stable_hash(seed, group) as f64 / u64::MAX as f64) < fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_is_respected_and_seed_matters() {
        let groups: Vec<String> = (0..10_000).map(|i| format!("file.jsonl#{i}")).collect();
        let held = groups.iter().filter(|g| in_holdout(g, 7, 0.1)).count();
        assert!((800..1200).contains(&held), "{held}");
        let same = groups.iter().filter(|g| in_holdout(g, 7, 0.1) == in_holdout(g, 7, 0.1)).count();
        assert_eq!(same, groups.len());
        let moved = groups.iter().filter(|g| in_holdout(g, 7, 0.1) != in_holdout(g, 8, 0.1)).count();
        assert!(moved > 500, "another seed gives another split");
        assert!(!in_holdout("x", 1, 0.0));
        assert!(in_holdout("x", 1, 1.0));
    }
}
