//! How the pages write durations, times, rates and ratios.

/// A duration in seconds: `850 µs`, `19.0 ms`, `1.25 s`.
#[must_use]
pub fn seconds(value: f64) -> String {
    if !value.is_finite() {
        return "∞".into();
    }
    if value < 0.001 {
        format!("{:.0} µs", value * 1e6)
    } else if value < 1.0 {
        format!("{:.1} ms", value * 1e3)
    } else {
        format!("{value:.2} s")
    }
}

/// A duration in nanoseconds.
#[must_use]
pub fn nanos(value: u64) -> String {
    seconds(value as f64 / 1e9)
}

/// A rate of calls: `12.3/s`, `0.05/s`.
#[must_use]
pub fn rate(value: f64) -> String {
    if value >= 10.0 { format!("{value:.1}/s") } else { format!("{value:.2}/s") }
}

/// A ratio as a percentage: `9.1 %`.
#[must_use]
pub fn percent(value: f64) -> String {
    format!("{:.1} %", value * 100.0)
}

/// Unix nanoseconds as a UTC time to the millisecond: `2026-11-27 20:56:11.123Z`.
#[must_use]
pub fn unix_nanos(value: u64) -> String {
    let seconds = value / 1_000_000_000;
    let millis = (value % 1_000_000_000) / 1_000_000;
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 to a Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_unit_that_keeps_them_readable() {
        assert_eq!(seconds(0.000_85), "850 µs");
        assert_eq!(seconds(0.019), "19.0 ms");
        assert_eq!(seconds(1.254_9), "1.25 s");
        assert_eq!(nanos(3_000_000), "3.0 ms");
    }

    #[test]
    fn unix_times_are_written_in_utc() {
        assert_eq!(unix_nanos(0), "1970-01-01 00:00:00.000Z");
        assert_eq!(unix_nanos(1_709_210_096_789_000_000), "2024-02-29 12:34:56.789Z");
    }

    #[test]
    fn rates_and_ratios_keep_small_values_visible() {
        assert_eq!(rate(0.05), "0.05/s");
        assert_eq!(rate(123.45), "123.5/s");
        assert_eq!(percent(1.0 / 11.0), "9.1 %");
    }
}
