//! Parses an RFC 3339 date-time such as `2026-11-30T08:15:12Z` or
//! `2026-11-30T09:15:12.5+01:00` into milliseconds since the Unix epoch, as Litestream's
//! `-timestamp` (Go's `time.RFC3339`) accepts it: restore's `-timestamp` argument, and the
//! `litestream-timestamp` metadata of objects.
//!
//! LTX timestamps are whole milliseconds and a restore takes the files made strictly
//! before T, so a fraction finer than a millisecond rounds T up: a file made at T's whole
//! millisecond was made before T.
//!
//! It must never panic, whatever the input: every field is range-checked before use.

/// Why a string is not an RFC 3339 date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp {0:?}: expected RFC 3339, e.g. 2026-11-30T08:15:12Z or 2026-11-30T09:15:12.250+01:00"
)]
pub struct TimestampError(String);

/// Milliseconds since the Unix epoch of an RFC 3339 date-time.
pub fn parse_millis(text: &str) -> Result<i64, TimestampError> {
    parse(text).ok_or_else(|| TimestampError(text.to_owned()))
}

fn parse(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let at = |i: usize, expected: &[u8]| b.get(i).is_some_and(|c| expected.contains(c));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if at(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = i - start;
        if frac == 0 || frac > 9 {
            return None;
        }
        let kept = frac.min(3);
        millis = digits(start, kept)? * 10i64.pow(3 - kept as u32);
        let finer = b.get(start + kept..i).unwrap_or_default();
        if finer.iter().any(|&d| d != b'0') {
            millis += 1; // rounded up, see the module docs
        }
    }
    let offset_minutes = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && at(i + 3, b":") => {
            let (h, m) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (March-based eras of 400 years).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use walcast_ltx::rfc3339_millis;

    #[test]
    fn parses_what_the_ltx_header_formatter_prints() {
        for ms in [
            0,
            951_782_400_000,
            1_795_426_111_539,
            253_402_300_799_999,
            -1,
        ] {
            assert_eq!(parse_millis(&rfc3339_millis(ms)), Ok(ms), "{ms}");
        }
    }

    #[test]
    fn offsets_and_fractions() {
        let utc = parse_millis("2026-11-23T09:28:31.539Z").unwrap();
        assert_eq!(parse_millis("2026-11-23T10:28:31.539+01:00"), Ok(utc));
        assert_eq!(parse_millis("2026-11-23T07:58:31.539-01:30"), Ok(utc));
        assert_eq!(parse_millis("2026-11-23T09:28:31.539000000Z"), Ok(utc));
        assert_eq!(parse_millis("2026-11-23T09:28:31.538000001Z"), Ok(utc));
        assert_eq!(parse_millis("2026-11-23T09:28:31.999999Z"), Ok(utc + 461));
        assert_eq!(parse_millis("2026-11-23T09:28:31.5Z"), Ok(utc - 39));
        assert_eq!(parse_millis("2026-11-23T09:28:31Z"), Ok(utc - 539));
    }

    #[test]
    fn refuses_anything_else_without_panicking() {
        for bad in [
            "",
            "2026",
            "2026-11-23",
            "2026-11-23 09:28:31Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T09:60:00Z",
            "2026-11-23T09:28:60Z",
            "2026-11-23T09:28:31",
            "2026-11-23T09:28:31.Z",
            "2026-11-23T09:28:31.1234567890Z",
            "2026-11-23T09:28:31+0100",
            "2026-11-23T09:28:31+01:00x",
            "2026-11-23T09:28:31Zx",
            "+026-11-23T09:28:31Z",
            "2026-11-23T09:28:31\u{e9}",
            "\u{e9}\u{e9}\u{e9}\u{e9}-11-23T09:28:31Z",
        ] {
            assert!(parse_millis(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_millis("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
    }

    proptest::proptest! {
        #[test]
        fn any_string_is_parsed_or_refused_without_panicking(s in ".*") {
            let _ = parse_millis(&s);
        }

        #[test]
        fn near_misses_are_parsed_or_refused_without_panicking(
            s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:?[0-9]{2})?"
        ) {
            let _ = parse_millis(&s);
        }

        #[test]
        fn every_millisecond_from_year_1_to_9999_round_trips(
            ms in -62_135_596_800_000i64..=253_402_300_799_999
        ) {
            proptest::prop_assert_eq!(parse_millis(&rfc3339_millis(ms)), Ok(ms));
        }
    }
}
