//! Power-of-two rescaling into the safe range, and exact float helpers (frexp, ldexp, 2^k).

use faer::MatRef;

/// A factorization whose input's largest magnitude lies outside
/// `[2^-SAFE_EXPONENT, 2^SAFE_EXPONENT]` runs on a copy rescaled by a power of
/// two onto the nearer end of that range (LAPACK's `xGESDD`/`xGEQRF` drivers use
/// the same band, `sqrt(safe_min)/ε ≈ 1e-138` to its reciprocal). Squares and
/// products of in-band values can neither overflow nor underflow, and moving
/// only as far as the band loses the least of the smallest entries.
pub(super) const SAFE_EXPONENT: i64 = 460;

/// `max |x|` over a slice (SIMD via faer).
pub(super) fn max_abs(data: &[f64]) -> f64 {
    MatRef::from_column_major_slice(data, data.len(), 1).norm_max()
}

/// The even exponent `k` such that `2ᵏ·max_abs` lies in (or at the edge of)
/// `[2^-SAFE_EXPONENT, 2^SAFE_EXPONENT]`; 0 when it already does (or is zero).
/// Even, so that Cholesky can take its square root exactly.
pub(super) fn scale_exponent(max_abs: f64) -> i32 {
    if max_abs == 0.0 || !max_abs.is_finite() {
        return 0;
    }
    let (_, e) = frexp(max_abs);
    // e ∈ [-1074, 1023], so k ∈ [-563, 614] and 2ᵏ, 2⁻ᵏ are normal numbers.
    let k = if e > SAFE_EXPONENT {
        SAFE_EXPONENT - e
    } else if e < -SAFE_EXPONENT {
        -SAFE_EXPONENT - e
    } else {
        return 0;
    };
    // Round away from zero to even: the scaled maximum stays inside the band.
    let k = if k % 2 == 0 { k } else { k + k.signum() };
    i32::try_from(k).unwrap_or(0)
}

/// Multiplies every element by `2^exp` (exact unless the result leaves the
/// normal range); a no-op for `exp == 0`.
pub(super) fn scale_in_place(data: &mut [f64], exp: i32) {
    // Steps of at most 2^±1000 keep each factor representable; all steps go
    // the same way, so no intermediate is further out of range than the result.
    let mut remaining = exp;
    while remaining != 0 {
        let step = remaining.clamp(-1000, 1000);
        let factor = pow2(step);
        for x in data.iter_mut() {
            *x *= factor;
        }
        remaining -= step;
    }
}

/// `2^exp`, exactly, for `exp ∈ [-1022, 1023]` (clamped beyond).
pub(super) fn pow2(exp: i32) -> f64 {
    let exp = exp.clamp(-1022, 1023);
    f64::from_bits(((exp + 1023) as u64) << 52)
}

/// Splits a finite non-zero `x` into `m·2^e` with `1 ≤ |m| < 2`.
pub(super) fn frexp(x: f64) -> (f64, i64) {
    const EXP_MASK: u64 = 0x7ff << 52;
    let bits = x.to_bits();
    let biased = ((bits & EXP_MASK) >> 52) as i64;
    if biased == 0 {
        if x == 0.0 {
            return (0.0, 0);
        }
        // Subnormal: normalize first.
        let (m, e) = frexp(x * pow2(64));
        return (m, e - 64);
    }
    let mantissa = f64::from_bits((bits & !EXP_MASK) | (1023 << 52));
    (mantissa, biased - 1023)
}

/// `m·2^e`, saturating to ±inf / ±0 as the true value would.
pub(super) fn ldexp(mut m: f64, mut e: i64) -> f64 {
    while e > 1000 {
        m *= pow2(1000);
        e -= 1000;
        if m.is_infinite() {
            return m;
        }
    }
    while e < -1000 {
        m *= pow2(-1000);
        e += 1000;
        if m == 0.0 {
            return m;
        }
    }
    // |e| ≤ 1000 here.
    m * pow2(e as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_helpers_are_exact() {
        assert_eq!(frexp(12.0), (1.5, 3));
        assert_eq!(frexp(-0.75), (-1.5, -1));
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (1.0, -1024));
        assert_eq!(ldexp(1.5, 3), 12.0);
        assert_eq!(ldexp(1.0, 5000), f64::INFINITY);
        assert_eq!(ldexp(-1.0, -5000), 0.0);
        assert_eq!(ldexp(1.0, -1074), f64::from_bits(1));
        assert_eq!(scale_exponent(1.0), 0);
        assert_eq!(scale_exponent(0.0), 0);
        assert_eq!(scale_exponent(2f64.powi(460)), 0);
        assert_eq!(scale_exponent(2f64.powi(-460)), 0);
        assert_eq!(scale_exponent(1e300), -536);
        assert_eq!(scale_exponent(1e-300), 538);
        assert_eq!(scale_exponent(f64::MAX), -564);
        assert_eq!(scale_exponent(f64::from_bits(1)), 614);
        assert_eq!(pow2(-3), 0.125);
    }
}
