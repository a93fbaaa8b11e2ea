//! Cutting special tokens out of a text before tokenizing the rest (llama.cpp's
//! `tokenizer_st_partition`).
//!
//! Special tokens are tried longest first; each one splits every remaining plain-text
//! fragment at each of its occurrences. Control and unknown tokens are only cut out when the
//! caller asks for `parse_special`; user-defined tokens always are (as in llama.cpp and
//! Hugging Face tokenizers).

use aho_corasick::AhoCorasick;

/// How a special token takes part in partitioning.
#[derive(Debug, Clone)]
pub(crate) struct Special {
    pub text: String,
    pub id: u32,
    /// Control or unknown: only cut out with `parse_special`.
    pub control: bool,
    /// Eat ASCII whitespace to the left / right of the token (Hugging Face `lstrip`/`rstrip`).
    pub lstrip: bool,
    pub rstrip: bool,
}

/// A piece of the input: plain text to tokenize, or one special token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

/// The special tokens of a vocabulary, longest first.
#[derive(Debug, Clone)]
pub(crate) struct Specials {
    list: Vec<Special>,
    /// Finds which special tokens occur at all, so only those are tried (a pure speed-up).
    finder: Option<AhoCorasick>,
}

impl Specials {
    pub(crate) fn new(mut list: Vec<Special>) -> Specials {
        list.retain(|s| !s.text.is_empty());
        // Stable: equal lengths keep id order.
        list.sort_by_key(|s| std::cmp::Reverse(s.text.len()));
        let finder = if list.is_empty() { None } else { AhoCorasick::new(list.iter().map(|s| s.text.as_str())).ok() };
        Specials { list, finder }
    }

    /// Splits `text` into fragments.
    pub(crate) fn partition<'a>(&self, text: &'a str, parse_special: bool) -> Vec<Fragment<'a>> {
        let mut frags = vec![Fragment::Text(text)];
        if text.is_empty() {
            return Vec::new();
        }
        let present: Vec<bool> = match &self.finder {
            None => return frags,
            Some(ac) => {
                let mut present = vec![false; self.list.len()];
                for m in ac.find_overlapping_iter(text) {
                    present[m.pattern().as_usize()] = true;
                }
                present
            }
        };
        for (i, sp) in self.list.iter().enumerate() {
            if !present[i] || (sp.control && !parse_special) {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                match f {
                    Fragment::Token(_) => next.push(f),
                    Fragment::Text(mut rest) => {
                        while let Some(pos) = rest.find(sp.text.as_str()) {
                            let mut left = &rest[..pos];
                            if sp.lstrip {
                                left = left.trim_end_matches(|c: char| c.is_ascii_whitespace());
                            }
                            if !left.is_empty() {
                                next.push(Fragment::Text(left));
                            }
                            next.push(Fragment::Token(sp.id));
                            rest = &rest[pos + sp.text.len()..];
                            if sp.rstrip {
                                rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
                            }
                        }
                        if !rest.is_empty() {
                            next.push(Fragment::Text(rest));
                        }
                    }
                }
            }
            frags = next;
        }
        frags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(text: &str, id: u32, control: bool) -> Special {
        Special { text: text.into(), id, control, lstrip: false, rstrip: false }
    }

    #[test]
    fn control_tokens_only_with_parse_special() {
        let s = Specials::new(vec![sp("<|im_start|>", 1, true), sp("<tool>", 7, false)]);
        let t = "a<|im_start|>b<tool>c";
        assert_eq!(
            s.partition(t, true),
            vec![Fragment::Text("a"), Fragment::Token(1), Fragment::Text("b"), Fragment::Token(7), Fragment::Text("c")]
        );
        assert_eq!(
            s.partition(t, false),
            vec![Fragment::Text("a<|im_start|>b"), Fragment::Token(7), Fragment::Text("c")]
        );
    }

    #[test]
    fn longest_token_wins_and_repeats_are_all_cut() {
        let s = Specials::new(vec![sp("\n", 10, false), sp("\n\n", 11, false)]);
        assert_eq!(
            s.partition("a\n\n\nb\n", false),
            vec![Fragment::Text("a"), Fragment::Token(11), Fragment::Token(10), Fragment::Text("b"), Fragment::Token(10)]
        );
    }

    #[test]
    fn strip_flags_eat_neighbouring_spaces() {
        let mut m = sp("<mask>", 5, true);
        m.lstrip = true;
        m.rstrip = true;
        let s = Specials::new(vec![m]);
        assert_eq!(
            s.partition("x  <mask>  y", true),
            vec![Fragment::Text("x"), Fragment::Token(5), Fragment::Text("y")]
        );
    }

    #[test]
    fn empty_text_has_no_fragments() {
        let s = Specials::new(vec![sp("<s>", 1, true)]);
        assert!(s.partition("", true).is_empty());
    }
}
