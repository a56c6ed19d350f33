//! Deterministic numbers for test and bench inputs: the same matrices on every run and machine,
//! without a random-number crate.

/// An xorshift64 stream (Marsaglia's 13/7/17 triple) of numbers in `[0, 1)` with 53 random bits.
#[derive(Debug, Clone)]
pub struct Xorshift {
    state: u64,
}

impl Xorshift {
    /// The stream of `seed`; every seed, 0 included, gives a stream of its own.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        // Spread small seeds over the whole word; an odd state is never the fixed point 0.
        Self { state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 }
    }

    /// The next number in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next `n` numbers, each mapped from `[0, 1)` by `map`.
    pub fn take(&mut self, n: usize, map: impl Fn(f64) -> f64) -> Vec<f64> {
        (0..n).map(|_| map(self.next_unit())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_numbers_every_time_and_other_seeds_other_ones() {
        let first = Xorshift::new(7).take(100, |x| x);
        assert_eq!(first, Xorshift::new(7).take(100, |x| x));
        assert_ne!(first, Xorshift::new(8).take(100, |x| x));
        assert_ne!(Xorshift::new(0).take(4, |x| x), vec![0.0; 4], "seed 0 is no stuck stream");
    }

    #[test]
    fn the_numbers_fill_the_unit_interval() {
        let numbers = Xorshift::new(1).take(10_000, |x| x);
        assert!(numbers.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = numbers.iter().sum::<f64>() / numbers.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        assert!(numbers.iter().any(|x| *x < 0.01) && numbers.iter().any(|x| *x > 0.99));
    }
}
