//! Value types and the explicit string → value conversions the mapping uses.
//!
//! HubSpot sends every property as a string (or null). Rules, for every
//! conversion:
//! * leading/trailing whitespace is ignored; an empty or all-whitespace
//!   string means "no value" (`Ok(None)`): HubSpot sends `""` for cleared
//!   values;
//! * anything else either converts exactly or is a [`ConvError`]; nothing
//!   panics, nothing is guessed (no locale-dependent `1,000.50`, no
//!   scientific notation, no floats).

use std::fmt;

use hubsync_hubspot::time::TimeError;
pub use hubsync_hubspot::time::Timestamp;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// What kind of value a field expected; reported in [`crate::FieldError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    Text,
    Email,
    Decimal,
    Integer,
    Money,
    Probability,
    Timestamp,
    Date,
    Boolean,
    Enumeration,
    Owner,
    Pipeline,
    Association,
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKind::Text => "text",
            ValueKind::Email => "email",
            ValueKind::Decimal => "decimal",
            ValueKind::Integer => "integer",
            ValueKind::Money => "money",
            ValueKind::Probability => "probability",
            ValueKind::Timestamp => "timestamp",
            ValueKind::Date => "date",
            ValueKind::Boolean => "boolean",
            ValueKind::Enumeration => "enumeration",
            ValueKind::Owner => "owner",
            ValueKind::Pipeline => "pipeline",
            ValueKind::Association => "association",
        })
    }
}

/// Why one value could not be converted. The message never contains the
/// value itself (it may be PII).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvError {
    #[error(
        "not a plain decimal number (digits, optional sign and '.'; no separators or exponents)"
    )]
    NotADecimal,
    #[error("decimal has too many digits to be represented exactly")]
    DecimalOverflow,
    #[error("not an integer")]
    NotAnInteger,
    #[error("negative value where only non-negative values are allowed")]
    Negative,
    #[error("value out of range: {0}")]
    OutOfRange(&'static str),
    #[error("not a recognised date/time (ISO-8601, date-only YYYY-MM-DD, or epoch milliseconds)")]
    NotATimestamp,
    #[error("not a valid email address")]
    NotAnEmail,
    #[error("not a boolean (true/false, yes/no, 1/0)")]
    NotABoolean,
    #[error("not one of the property's known options (value kept as is)")]
    UnknownEnumValue,
    #[error("no owner with this id in the portal")]
    UnknownOwner,
    #[error("the portal's owners could not be loaded")]
    OwnersUnavailable,
    #[error("no pipeline or stage with this id in the portal")]
    UnknownPipelineValue,
    #[error("the portal's pipelines could not be loaded")]
    PipelinesUnavailable,
    #[error("the record's associations could not be loaded")]
    AssociationsUnavailable,
}

/// Money in integer cents (minor units). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cents(pub i64);

impl Cents {
    pub const fn get(self) -> i64 {
        self.0
    }

    /// Exact decimal amount → cents. Sub-cent amounts are rounded to the
    /// nearest cent with **banker's rounding** (half to even: `0.005` → 0,
    /// `0.015` → 2), which keeps sums unbiased; HubSpot currency values
    /// rarely carry more than two decimals. Amounts that do not fit in an
    /// `i64` number of cents are an error.
    pub fn from_decimal(amount: Decimal) -> Result<Self, ConvError> {
        let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
        let cents = rounded
            .checked_mul(Decimal::ONE_HUNDRED)
            .ok_or(ConvError::OutOfRange("amount does not fit in i64 cents"))?;
        cents
            .to_i64()
            .map(Cents)
            .ok_or(ConvError::OutOfRange("amount does not fit in i64 cents"))
    }
}

/// The trimmed value, or `None` for null / empty / whitespace-only.
pub fn non_empty(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|s| !s.is_empty())
}

/// Free text: trimmed; empty means no value. Never fails.
pub fn parse_text(raw: Option<&str>) -> Option<String> {
    non_empty(raw).map(str::to_owned)
}

/// A plain decimal: optional sign, ASCII digits, at most one `.`, at least
/// one digit. Rejects thousands separators, exponents, `NaN`/`inf`, and more
/// precision than `Decimal` holds exactly. The result is normalized
/// (`1000.50` → `1000.5`) so equal amounts serialize and hash identically.
pub fn parse_decimal(raw: Option<&str>) -> Result<Option<Decimal>, ConvError> {
    let Some(s) = non_empty(raw) else {
        return Ok(None);
    };
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let mut digits = 0usize;
    let mut dots = 0usize;
    for b in unsigned.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return Err(ConvError::NotADecimal),
        }
    }
    if digits == 0 || dots > 1 {
        return Err(ConvError::NotADecimal);
    }
    // `from_str_exact` rejects values it would have to round.
    let d = Decimal::from_str_exact(s).map_err(|_| ConvError::DecimalOverflow)?;
    Ok(Some(d.normalize()))
}

/// A non-negative integer. Accepts integral decimals (`"250"`, `"250.0"`),
/// rejects fractions and values beyond `i64`.
pub fn parse_count(raw: Option<&str>) -> Result<Option<i64>, ConvError> {
    let Some(d) = parse_decimal(raw)? else {
        return Ok(None);
    };
    if !d.fract().is_zero() {
        return Err(ConvError::NotAnInteger);
    }
    if d.is_sign_negative() && !d.is_zero() {
        return Err(ConvError::Negative);
    }
    d.to_i64()
        .map(Some)
        .ok_or(ConvError::OutOfRange("integer does not fit in i64"))
}

/// Money: a decimal converted to [`Cents`] (banker's rounding below a cent).
pub fn parse_cents(raw: Option<&str>) -> Result<Option<Cents>, ConvError> {
    parse_decimal(raw)?.map(Cents::from_decimal).transpose()
}

/// A probability in `[0, 1]` (HubSpot's `hs_deal_stage_probability`).
pub fn parse_probability(raw: Option<&str>) -> Result<Option<Decimal>, ConvError> {
    let Some(d) = parse_decimal(raw)? else {
        return Ok(None);
    };
    if d < Decimal::ZERO || d > Decimal::ONE {
        return Err(ConvError::OutOfRange("probability must be between 0 and 1"));
    }
    Ok(Some(d))
}

/// A date/time as HubSpot sends it ([`hubsync_hubspot::time::parse_timestamp`]:
/// RFC 3339, ISO-8601 without offset as UTC, a date only as midnight UTC,
/// or epoch milliseconds), with its error as a [`ConvError`].
pub fn parse_timestamp(raw: &str) -> Result<Option<Timestamp>, ConvError> {
    hubsync_hubspot::time::parse_timestamp(raw).map_err(|e| match e {
        TimeError::OutOfRange(why) => ConvError::OutOfRange(why),
        TimeError::NotATimestamp => ConvError::NotATimestamp,
    })
}

/// An email address: trimmed; must have one `@` with a non-empty local part
/// and a domain containing no whitespace. Deliberately loose (HubSpot
/// validates addresses itself); it only catches values that cannot be an
/// address at all.
pub fn parse_email(raw: Option<&str>) -> Result<Option<String>, ConvError> {
    let Some(s) = non_empty(raw) else {
        return Ok(None);
    };
    let ok = match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if ok {
        Ok(Some(s.to_owned()))
    } else {
        Err(ConvError::NotAnEmail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn empty_and_whitespace_mean_no_value() {
        for s in [None, Some(""), Some("  "), Some("\t\n")] {
            assert_eq!(parse_decimal(s), Ok(None));
            assert_eq!(parse_count(s), Ok(None));
            assert_eq!(parse_cents(s), Ok(None));
            assert_eq!(parse_probability(s), Ok(None));
            assert_eq!(parse_email(s), Ok(None));
            assert_eq!(parse_text(s), None);
            assert_eq!(parse_timestamp(s.unwrap_or("")), Ok(None));
        }
    }

    #[test]
    fn decimals_parse_exactly_and_normalize() {
        assert_eq!(parse_decimal(Some("1000.50")), Ok(Some(dec("1000.5"))));
        assert_eq!(parse_decimal(Some(" -12 ")), Ok(Some(dec("-12"))));
        assert_eq!(parse_decimal(Some("+0.10")), Ok(Some(dec("0.1"))));
        assert_eq!(parse_decimal(Some(".5")), Ok(Some(dec("0.5"))));
        assert_eq!(parse_decimal(Some("5.")), Ok(Some(dec("5"))));
        assert_eq!(
            parse_decimal(Some("0.1")).unwrap().unwrap().to_string(),
            "0.1",
            "no float rounding"
        );
    }

    #[test]
    fn malformed_decimals_are_errors() {
        for s in [
            "1,000.50", "abc", "1e5", "1E5", "NaN", "inf", "1.2.3", "-", ".", "+-1", "1 000",
            "0x10", "١٢",
        ] {
            assert_eq!(parse_decimal(Some(s)), Err(ConvError::NotADecimal), "{s}");
        }
        assert_eq!(
            parse_decimal(Some("123456789012345678901234567890123")),
            Err(ConvError::DecimalOverflow)
        );
    }

    #[test]
    fn cents_use_bankers_rounding_below_a_cent() {
        assert_eq!(parse_cents(Some("1500")), Ok(Some(Cents(150_000))));
        assert_eq!(parse_cents(Some("1500.5")), Ok(Some(Cents(150_050))));
        assert_eq!(parse_cents(Some("0.005")), Ok(Some(Cents(0))));
        assert_eq!(parse_cents(Some("0.015")), Ok(Some(Cents(2))));
        assert_eq!(parse_cents(Some("0.025")), Ok(Some(Cents(2))));
        assert_eq!(parse_cents(Some("0.0251")), Ok(Some(Cents(3))));
        assert_eq!(parse_cents(Some("-10.10")), Ok(Some(Cents(-1010))));
    }

    #[test]
    fn huge_amounts_overflowing_i64_cents_are_errors() {
        // i64::MAX cents is 92233720368547758.07
        assert_eq!(
            parse_cents(Some("92233720368547758.07")),
            Ok(Some(Cents(i64::MAX)))
        );
        assert!(matches!(
            parse_cents(Some("92233720368547758.08")),
            Err(ConvError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_cents(Some("99999999999999999999999999")),
            Err(ConvError::OutOfRange(_))
        ));
    }

    #[test]
    fn counts_are_non_negative_integers() {
        assert_eq!(parse_count(Some("250")), Ok(Some(250)));
        assert_eq!(parse_count(Some("250.0")), Ok(Some(250)));
        assert_eq!(parse_count(Some("-0")), Ok(Some(0)));
        assert_eq!(parse_count(Some("2.5")), Err(ConvError::NotAnInteger));
        assert_eq!(parse_count(Some("-3")), Err(ConvError::Negative));
        assert!(matches!(
            parse_count(Some("99999999999999999999")),
            Err(ConvError::OutOfRange(_))
        ));
    }

    #[test]
    fn probabilities_are_between_zero_and_one() {
        assert_eq!(parse_probability(Some("0.2")), Ok(Some(dec("0.2"))));
        assert_eq!(parse_probability(Some("1")), Ok(Some(Decimal::ONE)));
        assert!(matches!(
            parse_probability(Some("20")),
            Err(ConvError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_probability(Some("-0.1")),
            Err(ConvError::OutOfRange(_))
        ));
    }

    #[test]
    fn timestamps_accept_hubspot_formats() {
        let t = |s: &str| parse_timestamp(s).unwrap().unwrap().to_rfc3339();
        assert_eq!(t("2024-05-01T12:00:00.123Z"), "2024-05-01T12:00:00.123Z");
        assert_eq!(t("2024-05-01T12:00:00Z"), "2024-05-01T12:00:00.000Z");
        assert_eq!(t("2024-05-01T14:00:00+02:00"), "2024-05-01T12:00:00.000Z");
        assert_eq!(t("2024-05-01T12:00:00.123456Z"), "2024-05-01T12:00:00.123Z");
        assert_eq!(t("2024-05-01T12:00:00"), "2024-05-01T12:00:00.000Z");
        assert_eq!(t("2024-05-01"), "2024-05-01T00:00:00.000Z");
        assert_eq!(t("1714564800123"), "2024-05-01T12:00:00.123Z");
        assert_eq!(t(" 0 "), "1970-01-01T00:00:00.000Z");
        assert_eq!(t("-1000"), "1969-12-31T23:59:59.000Z");
        assert_eq!(
            parse_timestamp("1714564800123")
                .unwrap()
                .unwrap()
                .epoch_ms(),
            1_714_564_800_123
        );
    }

    #[test]
    fn malformed_or_out_of_range_timestamps_are_errors() {
        for s in [
            "abc",
            "2024-13-01",
            "2024-02-30",
            "05/01/2024",
            "2024-05-01 12:00",
            "1e12",
            "2024-05-01T25:00:00Z",
        ] {
            assert_eq!(parse_timestamp(s), Err(ConvError::NotATimestamp), "{s}");
        }
        for s in [
            "99999999999999999999",
            "9223372036854775807",
            "-62135596800001",
            "253402300800000",
        ] {
            assert!(
                matches!(parse_timestamp(s), Err(ConvError::OutOfRange(_))),
                "{s}"
            );
        }
        assert!(parse_timestamp("253402300799999").unwrap().is_some()); // 9999-12-31T23:59:59.999Z
    }

    #[test]
    fn timestamp_serializes_as_rfc3339_utc_and_back() {
        let ts = Timestamp::from_epoch_ms(1_714_564_800_123).unwrap();
        let json = serde_json::to_string(&ts).unwrap();
        assert_eq!(json, "\"2024-05-01T12:00:00.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), ts);
    }

    #[test]
    fn emails_are_loosely_validated() {
        assert_eq!(parse_email(Some(" a@b.test ")), Ok(Some("a@b.test".into())));
        for s in ["no-at-sign", "@b.test", "a@", "a@b@c", "a b@c.test"] {
            assert_eq!(parse_email(Some(s)), Err(ConvError::NotAnEmail), "{s}");
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in any::<String>()) {
            let _ = parse_decimal(Some(&s));
            let _ = parse_count(Some(&s));
            let _ = parse_cents(Some(&s));
            let _ = parse_probability(Some(&s));
            let _ = parse_timestamp(&s);
            let _ = parse_email(Some(&s));
        }

        #[test]
        fn numeric_looking_strings_never_panic(s in "[-+]?[0-9]{0,40}(\\.[0-9]{0,40})?") {
            let _ = parse_cents(Some(&s));
            let _ = parse_count(Some(&s));
            let _ = parse_timestamp(&s);
        }

        #[test]
        fn cents_round_trip_for_two_decimal_amounts(c in any::<i64>()) {
            let s = Decimal::new(c, 2).to_string();
            prop_assert_eq!(parse_cents(Some(&s)), Ok(Some(Cents(c))));
        }

        #[test]
        fn epoch_ms_round_trips(ms in -62_135_596_800_000i64..253_402_300_800_000) {
            let ts = parse_timestamp(&ms.to_string()).unwrap().unwrap();
            prop_assert_eq!(ts.epoch_ms(), ms);
            let again = parse_timestamp(&ts.to_rfc3339()).unwrap().unwrap();
            prop_assert_eq!(again, ts);
        }
    }
}
