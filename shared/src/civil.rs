//! UTC calendar dates from epoch time, for the timestamps AWS formats (SigV4, `requestTime`),
//! without a date crate.

/// A UTC date and time: year, month (1–12), day, hours, minutes, seconds.
pub struct Civil {
    /// The year of the proleptic Gregorian calendar.
    pub year: i64,
    /// The month, 1–12.
    pub month: i64,
    /// The day of the month, 1–31.
    pub day: i64,
    /// The hour, 0–23.
    pub hour: i64,
    /// The minute, 0–59.
    pub minute: i64,
    /// The second, 0–59 (no leap seconds: epoch time has none).
    pub second: i64,
}

/// The UTC date and time of epoch milliseconds (Howard Hinnant's days-to-civil algorithm).
pub fn civil(epoch_millis: i64) -> Civil {
    let secs = epoch_millis.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Civil {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
    }
}
