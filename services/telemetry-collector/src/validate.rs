//! Problem messages the settings sections' `validate` methods share, so that every section words
//! the same mistake the same way.

use std::fmt::Display;

/// `prefix.key: must be at least 1` for every key marked zero.
pub(crate) fn zero_problems(prefix: &str, zero: &[(&str, bool)]) -> Vec<String> {
    zero.iter().filter(|&&(_, zero)| zero).map(|(key, _)| format!("{prefix}.{key}: must be at least 1")).collect()
}

/// A problem when `key`'s value is below `floor_key`'s, which bounds it from below.
pub(crate) fn below_problem<T: PartialOrd + Display>(
    prefix: &str,
    (key, value): (&str, T),
    (floor_key, floor): (&str, T),
) -> Option<String> {
    (value < floor).then(|| format!("{prefix}.{key}: must be at least {floor_key} ({floor}), got {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_below_floor_values_are_named_with_their_key_path() {
        let zero = zero_problems("section", &[("a", true), ("b", false), ("c", true)]);
        assert_eq!(zero, ["section.a: must be at least 1", "section.c: must be at least 1"]);
        assert_eq!(
            below_problem("section", ("max", 1), ("min", 2)).as_deref(),
            Some("section.max: must be at least min (2), got 1")
        );
        assert_eq!(below_problem("section", ("max", 2), ("min", 2)), None);
    }
}
