//! Short durations written as `<amount><unit>` (`7d`, `36h`, `90m`): the format of the
//! `apim.cab-i.com/ttl` tag, of notice lead times and of the key-rotation overlap.
//!
//! One format, one parser: the CRD schema pattern ([`SHORT_DURATION_PATTERN`]) accepts exactly
//! the strings [`ShortDuration::parse`] accepts, so an object the API server admitted always
//! deserializes.

use std::{borrow::Cow, fmt, str::FromStr};

use chrono::TimeDelta;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest accepted amount (six digits). Keeps every value far from any overflow:
/// 999999 days is about 2738 years.
pub const MAX_AMOUNT: u32 = 999_999;

/// The regular expression of the CRD schema for a short duration. It matches exactly what
/// [`ShortDuration::parse`] accepts.
pub const SHORT_DURATION_PATTERN: &str = "^[1-9][0-9]{0,5}[dhm]$";

/// The unit of a [`ShortDuration`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DurationUnit {
    /// `m`: minutes.
    Minutes,
    /// `h`: hours.
    Hours,
    /// `d`: days of 24 hours.
    Days,
}

impl DurationUnit {
    /// Seconds in one unit.
    pub const fn seconds(self) -> u64 {
        match self {
            DurationUnit::Minutes => 60,
            DurationUnit::Hours => 3_600,
            DurationUnit::Days => 86_400,
        }
    }

    /// The suffix of the unit (`m`, `h`, `d`).
    pub const fn suffix(self) -> char {
        match self {
            DurationUnit::Minutes => 'm',
            DurationUnit::Hours => 'h',
            DurationUnit::Days => 'd',
        }
    }
}

/// A positive duration written `<amount><unit>` with unit `d`, `h` or `m` (e.g. `7d`, `36h`,
/// `90m`). It keeps the unit it was written with, so it displays as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShortDuration {
    amount: u32,
    unit: DurationUnit,
}

/// Why a string is not a short duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationParseError {
    /// The string is empty.
    #[error("is empty")]
    Empty,
    /// The last character is not one of `d`, `h`, `m`.
    #[error("has no unit: it must end in d (days), h (hours) or m (minutes)")]
    MissingUnit,
    /// The amount before the unit is not a plain decimal number (no sign, no leading zero).
    #[error("has an amount that is not a plain decimal number")]
    InvalidAmount,
    /// The amount is zero.
    #[error("is zero")]
    Zero,
    /// The amount has more than six digits.
    #[error("is too large (at most {MAX_AMOUNT} of a unit)")]
    TooLarge,
}

impl ShortDuration {
    /// A duration of `amount` units; `None` when `amount` is 0 or above [`MAX_AMOUNT`].
    pub const fn new(amount: u32, unit: DurationUnit) -> Option<Self> {
        if amount == 0 || amount > MAX_AMOUNT {
            None
        } else {
            Some(Self { amount, unit })
        }
    }

    /// `days` days; `None` when 0 or too large.
    pub const fn days(days: u32) -> Option<Self> {
        Self::new(days, DurationUnit::Days)
    }

    /// `hours` hours; `None` when 0 or too large.
    pub const fn hours(hours: u32) -> Option<Self> {
        Self::new(hours, DurationUnit::Hours)
    }

    /// `minutes` minutes; `None` when 0 or too large.
    pub const fn minutes(minutes: u32) -> Option<Self> {
        Self::new(minutes, DurationUnit::Minutes)
    }

    /// Parses `7d`, `36h`, `90m`: a decimal amount from 1 to [`MAX_AMOUNT`] without sign,
    /// leading zero or spaces, then one unit letter. Never panics.
    pub fn parse(s: &str) -> Result<Self, DurationParseError> {
        let Some(last) = s.chars().last() else {
            return Err(DurationParseError::Empty);
        };
        let unit = match last {
            'd' => DurationUnit::Days,
            'h' => DurationUnit::Hours,
            'm' => DurationUnit::Minutes,
            _ => return Err(DurationParseError::MissingUnit),
        };
        // The unit is one ASCII byte, so this slice ends on a char boundary.
        let digits = &s[..s.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DurationParseError::InvalidAmount);
        }
        if digits.bytes().all(|b| b == b'0') {
            return Err(DurationParseError::Zero);
        }
        if digits.starts_with('0') {
            return Err(DurationParseError::InvalidAmount);
        }
        if digits.len() > 6 {
            return Err(DurationParseError::TooLarge);
        }
        let amount: u32 = digits.parse().map_err(|_| DurationParseError::TooLarge)?;
        Self::new(amount, unit).ok_or(DurationParseError::TooLarge)
    }

    /// The amount, in units.
    pub const fn amount(&self) -> u32 {
        self.amount
    }

    /// The unit it was written with.
    pub const fn unit(&self) -> DurationUnit {
        self.unit
    }

    /// Total seconds (cannot overflow: at most 999999 days).
    pub const fn as_secs(&self) -> u64 {
        self.amount as u64 * self.unit.seconds()
    }

    /// As a standard library duration.
    pub const fn as_std(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.as_secs())
    }

    /// As a chrono duration, for arithmetic on `DateTime<Utc>`.
    pub fn as_time_delta(&self) -> TimeDelta {
        // At most 999999 days = 8.64e10 s, far below TimeDelta's i64-millisecond range.
        TimeDelta::seconds(self.as_secs() as i64)
    }
}

impl PartialOrd for ShortDuration {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ShortDuration {
    /// Ordered by length; equal lengths written differently (`1d`, `24h`) by unit.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_secs()
            .cmp(&other.as_secs())
            .then(self.unit.cmp(&other.unit))
    }
}

impl fmt::Display for ShortDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

impl FromStr for ShortDuration {
    type Err = DurationParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ShortDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ShortDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&s).map_err(|e| {
            serde::de::Error::custom(format_args!(
                "duration {s:?} {e}; use e.g. \"7d\", \"36h\" or \"90m\""
            ))
        })
    }
}

impl JsonSchema for ShortDuration {
    fn schema_name() -> Cow<'static, str> {
        "ShortDuration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": SHORT_DURATION_PATTERN,
            "maxLength": 7,
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(
            ShortDuration::parse("7d"),
            Ok(ShortDuration::days(7).unwrap())
        );
        assert_eq!(ShortDuration::parse("36h").unwrap().as_secs(), 36 * 3600);
        assert_eq!(ShortDuration::parse("90m").unwrap().as_secs(), 90 * 60);
        assert_eq!(ShortDuration::parse("30d").unwrap().as_secs(), 30 * 86400);
        assert_eq!(ShortDuration::parse("999999d").unwrap().amount(), 999_999);
    }

    #[test]
    fn displays_as_written() {
        for s in ["7d", "36h", "90m", "30d", "1m", "999999h"] {
            assert_eq!(ShortDuration::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_zero_overflow_and_garbage() {
        use DurationParseError::*;
        let cases = [
            ("", Empty),
            ("0d", Zero),
            ("000h", Zero),
            ("7", MissingUnit),
            ("7s", MissingUnit),
            ("7D", MissingUnit),
            ("d", InvalidAmount),
            ("-7d", InvalidAmount),
            ("+7d", InvalidAmount),
            (" 7d", InvalidAmount),
            ("7 d", InvalidAmount),
            ("1.5d", InvalidAmount),
            ("07d", InvalidAmount),
            ("1h30m", InvalidAmount),
            ("٣d", InvalidAmount),
            ("1000000d", TooLarge),
            ("99999999999999999999999d", TooLarge),
        ];
        for (input, expected) in cases {
            assert_eq!(
                ShortDuration::parse(input),
                Err(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn orders_by_length() {
        let d1 = ShortDuration::parse("1d").unwrap();
        let h25 = ShortDuration::parse("25h").unwrap();
        let h24 = ShortDuration::parse("24h").unwrap();
        assert!(d1 < h25);
        assert!(h24 < d1, "same length, ordered by unit");
        assert_ne!(h24, d1);
    }

    #[test]
    fn serde_round_trip_and_rejection() {
        let d: ShortDuration = serde_json::from_str("\"48h\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"48h\"");
        let err = serde_json::from_str::<ShortDuration>("\"0h\"").unwrap_err();
        assert!(err.to_string().contains("is zero"), "{err}");
    }

    fn pattern_matches(s: &str) -> bool {
        // SHORT_DURATION_PATTERN, spelled out without a regex engine.
        let b = s.as_bytes();
        b.len() >= 2
            && b.len() <= 7
            && matches!(b[b.len() - 1], b'd' | b'h' | b'm')
            && (b'1'..=b'9').contains(&b[0])
            && b[1..b.len() - 1].iter().all(u8::is_ascii_digit)
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = ShortDuration::parse(&s);
        }

        #[test]
        fn parse_agrees_with_the_schema_pattern(s in "[0-9+ -]{0,9}[dhms ]?") {
            prop_assert_eq!(ShortDuration::parse(&s).is_ok(), pattern_matches(&s), "input {:?}", s);
        }

        #[test]
        fn display_parse_round_trip(amount in 1u32..=MAX_AMOUNT, unit in 0u8..3) {
            let unit = [DurationUnit::Minutes, DurationUnit::Hours, DurationUnit::Days][unit as usize];
            let d = ShortDuration::new(amount, unit).unwrap();
            prop_assert_eq!(ShortDuration::parse(&d.to_string()), Ok(d));
        }
    }
}
