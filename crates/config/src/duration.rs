//! Durations as Litestream's YAML spells them, Go's `time.ParseDuration` syntax: a sequence
//! of decimal numbers with units `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`, such as `500ms`,
//! `1s`, `1m30s`, `1.5h`, `24h`.
//!
//! This module only parses; it never decides whether a duration is allowed for a key
//! (zero, too short): [`crate::build`] does.

use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// Parses a Go duration. Negative durations are refused (no interval can be negative).
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad =
        |why: &str| format!("invalid duration {text:?}: {why}; write e.g. 500ms, 1s, 1m30s, 24h");
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.starts_with('-') {
        return Err(bad("negative"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(bad("a number is missing"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(bad("a unit is missing")),
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad("number too large"))?
        };
        let mut part = whole.checked_mul(unit_ns).ok_or_else(|| bad("too large"))?;
        // The fraction's digits, scaled by the unit, truncated to whole nanoseconds as Go does.
        let mut scale = unit_ns;
        for digit in fraction.bytes() {
            if digit == b'.' {
                return Err(bad("two decimal points"));
            }
            scale /= 10;
            part += u128::from(digit - b'0') * scale;
        }
        total_ns = total_ns.checked_add(part).ok_or_else(|| bad("too large"))?;
        rest = next;
    }
    let secs = u64::try_from(total_ns / 1_000_000_000).map_err(|_| bad("too large"))?;
    let nanos = u32::try_from(total_ns % 1_000_000_000).map_err(|_| bad("too large"))?;
    Ok(Duration::new(secs, nanos))
}

/// A duration read from YAML in Go syntax (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl<'de> serde::Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(GoDurationVisitor)
    }
}

struct GoDurationVisitor;

impl Visitor<'_> for GoDurationVisitor {
    type Value = GoDuration;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a duration such as 500ms, 1s, 1m30s or 24h")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<GoDuration, E> {
        parse_go_duration(text).map(GoDuration).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<GoDuration, E> {
        if value == 0 {
            return Ok(GoDuration(Duration::ZERO));
        }
        Err(E::custom(format!(
            "duration {value} has no unit; write e.g. {value}s or {value}ms"
        )))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<GoDuration, E> {
        match u64::try_from(value) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("duration {value} is negative"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_syntax() {
        let ms = |text: &str| parse_go_duration(text).unwrap().as_millis();
        assert_eq!(ms("1s"), 1000);
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("1m30s"), 90_000);
        assert_eq!(ms("24h"), 86_400_000);
        assert_eq!(ms("1.5h"), 5_400_000);
        assert_eq!(ms("0"), 0);
        assert_eq!(ms("+2s"), 2000);
        assert_eq!(
            parse_go_duration("250us").unwrap(),
            Duration::from_micros(250)
        );
        assert_eq!(parse_go_duration("3ns").unwrap(), Duration::from_nanos(3));
    }

    #[test]
    fn bad_durations_say_why() {
        for (text, why) in [
            ("10", "unit is missing"),
            ("1d", "unknown unit \"d\""),
            ("-1s", "negative"),
            ("", "empty"),
            ("s", "number is missing"),
            ("1.2.3s", "two decimal points"),
            ("99999999999999999999999h", "too large"),
        ] {
            let err = parse_go_duration(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
            assert!(err.contains("1m30s"), "{err}");
        }
    }
}
