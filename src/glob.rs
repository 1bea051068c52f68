//! A tiny glob matcher for parameter names (`"conv*.weight"`, `"fc?.bias"`), shared by
//! [`SparsityReport`](crate::SparsityReport) and [`PruningRecipe`](crate::PruningRecipe).
//!
//! Two wildcards and nothing else, so no regex engine is needed and no character of a
//! parameter name (`.`, `[`, `-`, digits) has to be escaped:
//!
//! * `*` matches any run of characters, **dots included**, so `"*.weight"` matches
//!   `"fc.weight"` and `"layers.0.weight"` alike;
//! * `?` matches exactly one character;
//! * every other character matches itself.

use std::collections::HashSet;

/// Whether `pattern` contains a wildcard (`*` or `?`).
pub(crate) fn is_pattern(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Whether `text` matches `pattern` as a whole (not a substring of it).
///
/// The classic linear-space backtracking matcher: on a mismatch, the last `*` is made to
/// swallow one more character. Worst case `O(len(pattern) * len(text))`, which for parameter
/// names (tens of characters) is nothing.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` seen in the pattern, and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last star take one more character and retry after it.
                Some((star_pi, star_ti)) => {
                    pi = star_pi + 1;
                    ti = star_ti + 1;
                    star = Some((star_pi, star_ti + 1));
                }
                None => return false,
            },
        }
    }
    // The text is used up: what is left of the pattern must be stars only.
    p[pi..].iter().all(|&c| c == '*')
}

/// The names of `all` matched by at least one pattern; `Err(pattern)` for the first pattern
/// that matches none of them (a typo must not go unnoticed).
pub(crate) fn select_names<'a, 'p>(
    all: &[&'a str],
    patterns: impl IntoIterator<Item = &'p str>,
) -> Result<HashSet<&'a str>, &'p str> {
    let mut selected = HashSet::new();
    for pattern in patterns {
        let mut hit = false;
        for &name in all {
            if glob_match(pattern, name) {
                hit = true;
                selected.insert(name);
            }
        }
        if !hit {
            return Err(pattern);
        }
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_match_whole_names_only() {
        assert!(glob_match("fc.weight", "fc.weight"));
        assert!(!glob_match("fc.weight", "fc.weight_orig"));
        assert!(!glob_match("fc", "fc.weight"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
    }

    #[test]
    fn star_crosses_dots() {
        assert!(glob_match("*.weight", "fc.weight"));
        assert!(glob_match("*.weight", "layers.0.weight"));
        assert!(!glob_match("*.weight", "fc.bias"));
        assert!(glob_match("conv*", "conv1.weight"));
        assert!(glob_match("*", ""));
        assert!(glob_match("**", "abc"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("*a", "aaa"));
    }

    #[test]
    fn question_mark_is_one_character() {
        assert!(glob_match("fc?.bias", "fc1.bias"));
        assert!(!glob_match("fc?.bias", "fc.bias"));
        assert!(!glob_match("fc?.bias", "fc10.bias"));
        assert!(glob_match("fc??.bias", "fc10.bias"));
        assert!(glob_match("é?", "éa"));
    }

    #[test]
    fn select_names_reports_the_pattern_that_matches_nothing() {
        let all = ["conv1.weight", "conv1.bias", "fc.weight"];
        let got = select_names(&all, ["*.weight"]).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.contains("fc.weight"));
        assert_eq!(select_names(&all, ["fc.weight", "fc2.*"]), Err("fc2.*"));
    }

    #[test]
    fn detects_wildcards() {
        assert!(is_pattern("*.weight"));
        assert!(is_pattern("fc?"));
        assert!(!is_pattern("fc.weight"));
    }
}
