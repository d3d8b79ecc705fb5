//! Resource quantities (`resource.Quantity` of apimachinery's `pkg/api/resource`): `500m`,
//! `1Gi`, `1e3`, `0.5`, parsed to an exact decimal, rounded up to nano precision like
//! upstream, printed in upstream's canonical form (`1.5` → `1500m`, `1024Mi` → `1Gi`).
//!
//! ```text
//! <quantity>        ::= <signedNumber><suffix>
//! <signedNumber>    ::= [+-] ( <digits> | <digits>.<digits> | <digits>. | .<digits> )
//! <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
//! <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
//! <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
//! <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
//! ```
//!
//! The value is held as `mantissa × 10^scale` with a 128-bit mantissa. Upstream keeps
//! arbitrary precision; here only inputs with more than 38 significant digits are
//! approximated (the excess digits are dropped, and still round the result up when they
//! fall below nano).

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Upstream's `splitREString`, quoted in the format error.
pub const QUANTITY_REGEX: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// Why a quantity failed to parse, with upstream's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// `ErrFormatWrong`
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    FormatWrong,
    /// `ErrNumeric`
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// `ErrSuffix`
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// How a quantity is written: remembered from parsing and reused when printing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `12e6`
    DecimalExponent,
    /// `12Mi` (powers of 1024)
    BinarySI,
    /// `12M` (powers of 1000)
    #[default]
    DecimalSI,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::DecimalExponent => "DecimalExponent",
            Format::BinarySI => "BinarySI",
            Format::DecimalSI => "DecimalSI",
        }
    }
}

/// A fixed-point quantity. Equality and ordering compare values, not formats
/// (`Quantity.Cmp`).
#[derive(Clone, Debug, Default)]
pub struct Quantity {
    negative: bool,
    /// Magnitude is `mantissa × 10^scale`; the mantissa has no trailing zeros (or is 0).
    mantissa: u128,
    scale: i32,
    format: Format,
    /// The input, when it was already canonical (upstream's `s` cache, quirks included).
    cached: Option<Box<str>>,
}

/// Significant digits kept from the input.
const MAX_DIGITS: usize = 38;
/// Nano: the finest scale a parsed quantity keeps.
const NANO: i32 = -9;
/// Parsed binary-SI quantities are capped at `2^63 - 1`.
const MAX_BINARY: u128 = i64::MAX as u128;

fn pow10(exp: u32) -> Option<u128> {
    10u128.checked_pow(exp)
}

fn digit_count(mut m: u128) -> i64 {
    let mut n = 1;
    while m >= 10 {
        m /= 10;
        n += 1;
    }
    n
}

/// Divides `m` by `10^exp`, rounding any remainder (or `sticky` lost digits) up.
fn div_pow10_round_up(m: u128, exp: i64, sticky: bool) -> u128 {
    if m == 0 && !sticky {
        return 0;
    }
    let divisor = u32::try_from(exp).ok().and_then(pow10);
    match divisor {
        Some(d) => {
            let q = m / d;
            if !m.is_multiple_of(d) || sticky {
                q + 1
            } else {
                q
            }
        }
        // 10^exp exceeds any mantissa: the quotient is 0 with a non-zero remainder.
        None => 1,
    }
}

/// Compares `m1 × 10^s1` with `m2 × 10^s2`.
fn cmp_magnitude(m1: u128, s1: i32, m2: u128, s2: i32) -> Ordering {
    match (m1 == 0, m2 == 0) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let order1 = digit_count(m1) + i64::from(s1);
    let order2 = digit_count(m2) + i64::from(s2);
    if order1 != order2 {
        return order1.cmp(&order2);
    }
    // Same order of magnitude: the scales differ by at most the digit counts (<= 39).
    let shift = |m: u128, by: i32| -> Option<u128> {
        u32::try_from(by)
            .ok()
            .and_then(pow10)
            .and_then(|p| m.checked_mul(p))
    };
    if s1 >= s2 {
        match shift(m1, s1 - s2) {
            Some(a) => a.cmp(&m2),
            None => Ordering::Greater,
        }
    } else {
        match shift(m2, s2 - s1) {
            Some(b) => m1.cmp(&b),
            None => Ordering::Less,
        }
    }
}

/// The pieces of a quantity string, as upstream's `parseQuantityString` scans them.
struct Parts<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

fn parse_quantity_string(s: &str) -> Result<Parts<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut positive = true;
    let mut pos = 0;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    let done = |num, denom, suffix| Parts {
        positive,
        num,
        denom,
        suffix,
    };
    // leading zeros
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(done("0", "", ""));
    }
    // numerator
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[start..pos];
    if pos >= end {
        return Ok(done(num, "", ""));
    }
    if num.is_empty() {
        num = "0";
    }
    // denominator
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[start..pos];
        if pos >= end {
            return Ok(done(num, denom, ""));
        }
    }
    // suffix: letters, an optional sign, digits
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    // Every byte consumed is ASCII, so these are char boundaries.
    Ok(done(num, denom, &s[suffix_start..]))
}

/// `(base, exponent, format)` of a suffix (`quantitySuffixer.interpret`).
fn interpret_suffix(suffix: &str) -> Option<(u32, i64, Format)> {
    let decimal = |e| Some((10, e, Format::DecimalSI));
    let binary = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            if rest.is_empty() {
                return None;
            }
            let parsed: i64 = rest.parse().ok()?;
            // Go converts the exponent with int32(), wrapping.
            Some((10, i64::from(parsed as i32), Format::DecimalExponent))
        }
    }
}

/// Whether upstream's int64 fast path would have kept the input string as the canonical
/// form (`Quantity.s`), which `String()` then returns verbatim.
fn fast_path_keeps_input(parts: &Parts<'_>, exponent: i64, format: Format) -> bool {
    let digits = parts.num.len() + parts.denom.len();
    let shifted_first = parts.num.bytes().chain(parts.denom.bytes()).next();
    match format {
        Format::DecimalExponent | Format::DecimalSI => {
            let scale = exponent - parts.denom.len() as i64;
            digits <= 18
                && scale >= i64::from(NANO)
                && scale % 3 == 0
                && !format!("{}{}", parts.num, parts.denom).ends_with("000")
                && shifted_first != Some(b'0')
        }
        Format::BinarySI => {
            if !parts.denom.is_empty() {
                return false;
            }
            let precision = 15 - parts.num.len() as i64 - exponent * 3 / 10 - 1;
            if precision < 0 {
                return false;
            }
            let Ok(value) = parts.num.parse::<i64>() else {
                return false;
            };
            let fits = u32::try_from(exponent)
                .ok()
                .and_then(|e| 1i64.checked_shl(e))
                .and_then(|m| value.checked_mul(m))
                .is_some();
            fits && exponent % 10 == 0 && value & 0x07 != 0
        }
    }
}

impl Quantity {
    /// Zero, written `0`.
    pub fn zero() -> Quantity {
        Quantity::default()
    }

    /// `resource.ParseQuantity`. Surrounding whitespace is an error (JSON decoding trims
    /// it first: see [`Quantity::from_json`]).
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if s == "0" {
            return Ok(Quantity {
                cached: Some(s.into()),
                ..Quantity::default()
            });
        }
        let parts = parse_quantity_string(s)?;
        let (base, exponent, mut format) =
            interpret_suffix(parts.suffix).ok_or(QuantityError::Suffix)?;
        let cache = fast_path_keeps_input(&parts, exponent, format);

        // The significant digits of num+denom, at most MAX_DIGITS of them.
        let mut mantissa: u128 = 0;
        let mut kept = 0usize;
        let mut dropped: i64 = 0;
        let mut sticky = false;
        for d in parts.num.bytes().chain(parts.denom.bytes()) {
            let digit = u128::from(d - b'0');
            if kept == 0 && digit == 0 {
                continue;
            }
            if kept < MAX_DIGITS {
                mantissa = mantissa * 10 + digit;
                kept += 1;
            } else {
                dropped += 1;
                sticky |= digit != 0;
            }
        }
        let mut scale: i64 = dropped - parts.denom.len() as i64;
        if base == 10 {
            scale += exponent;
        } else {
            let factor = 1u128 << exponent;
            loop {
                match mantissa.checked_mul(factor) {
                    Some(m) => {
                        mantissa = m;
                        break;
                    }
                    None => {
                        sticky |= !mantissa.is_multiple_of(10);
                        mantissa /= 10;
                        scale += 1;
                    }
                }
            }
        }

        // Round non-zero values up (away from zero) to nano.
        if scale < i64::from(NANO) {
            mantissa = div_pow10_round_up(mantissa, i64::from(NANO) - scale, sticky);
            scale = i64::from(NANO);
        }
        let mut scale = i32::try_from(scale).map_err(|_| QuantityError::Numeric)?;

        if format == Format::BinarySI {
            if cmp_magnitude(mantissa, scale, MAX_BINARY, 0) == Ordering::Greater {
                mantissa = MAX_BINARY;
                scale = 0;
            }
            if mantissa != 0 && cmp_magnitude(mantissa, scale, 1, 0) == Ordering::Less {
                format = Format::DecimalSI;
            }
        }
        let mut q = Quantity {
            negative: !parts.positive && mantissa != 0,
            mantissa,
            scale,
            format,
            cached: if cache { Some(s.into()) } else { None },
        };
        q.normalize();
        Ok(q)
    }

    /// Decodes a quantity from JSON the way `Quantity.UnmarshalJSON` does: a string
    /// (surrounding whitespace trimmed), a number, or `null` for zero.
    pub fn from_json(value: &serde_json::Value) -> Result<Quantity, QuantityError> {
        match value {
            serde_json::Value::String(s) => Quantity::parse(s.trim()),
            serde_json::Value::Number(n) => Quantity::parse(&n.to_string()),
            serde_json::Value::Null => Ok(Quantity::zero()),
            _ => Err(QuantityError::FormatWrong),
        }
    }

    /// `value × 10^scale` in `format` (`NewScaledQuantity`, with a format).
    pub fn from_scaled(value: i128, scale: i32, format: Format) -> Quantity {
        let mut q = Quantity {
            negative: value < 0,
            mantissa: value.unsigned_abs(),
            scale,
            format,
            cached: None,
        };
        q.normalize();
        q
    }

    /// `NewQuantity`: a whole number.
    pub fn from_value(value: i128, format: Format) -> Quantity {
        Quantity::from_scaled(value, 0, format)
    }

    /// `NewMilliQuantity`: thousandths.
    pub fn from_milli(milli: i128, format: Format) -> Quantity {
        Quantity::from_scaled(milli, -3, format)
    }

    fn normalize(&mut self) {
        if self.mantissa == 0 {
            self.scale = 0;
            self.negative = false;
            return;
        }
        while self.mantissa.is_multiple_of(10) {
            self.mantissa /= 10;
            self.scale = self.scale.saturating_add(1);
        }
    }

    /// The format remembered from parsing.
    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        match (self.mantissa == 0, self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }

    /// `ScaledValue`: the value in units of `10^scale`, rounded away from zero; `None`
    /// when it does not fit an `i128`.
    pub fn scaled_value(&self, scale: i32) -> Option<i128> {
        let shift = i64::from(self.scale) - i64::from(scale);
        let magnitude = if shift >= 0 {
            let p = u32::try_from(shift).ok().and_then(pow10);
            match p {
                Some(p) => self.mantissa.checked_mul(p)?,
                None if self.mantissa == 0 => 0,
                None => return None,
            }
        } else {
            div_pow10_round_up(self.mantissa, -shift, false)
        };
        let magnitude = i128::try_from(magnitude).ok()?;
        Some(if self.negative { -magnitude } else { magnitude })
    }

    fn saturate(&self, scaled: Option<i128>) -> i128 {
        scaled.unwrap_or(if self.negative { i128::MIN } else { i128::MAX })
    }

    /// `MilliValue`: thousandths, rounded away from zero (`100m` → 100, `1` → 1000),
    /// saturating.
    pub fn milli_value(&self) -> i128 {
        self.saturate(self.scaled_value(-3))
    }

    /// `Value`: whole units, rounded away from zero (`1500m` → 2), saturating.
    pub fn value(&self) -> i128 {
        self.saturate(self.scaled_value(0))
    }

    /// The value as a float, possibly losing precision.
    pub fn as_f64(&self) -> f64 {
        let v = self.mantissa as f64 * 10f64.powi(self.scale);
        if self.negative {
            -v
        } else {
            v
        }
    }

    /// `-self`, keeping the format.
    pub fn neg(&self) -> Quantity {
        let mut q = self.clone();
        q.cached = None;
        q.negative = !q.negative && q.mantissa != 0;
        q
    }

    /// `self + other`, `None` on overflow. A zero `self` takes `other`'s format.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let scale = self.scale.min(other.scale);
        let signed = |q: &Quantity| -> Option<i128> {
            let p = u32::try_from(q.scale - scale).ok().and_then(pow10)?;
            let m = i128::try_from(q.mantissa.checked_mul(p)?).ok()?;
            Some(if q.negative { -m } else { m })
        };
        let sum = signed(self)?.checked_add(signed(other)?)?;
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        Some(Quantity::from_scaled(sum, scale, format))
    }

    /// `self - other`, `None` on overflow.
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        self.checked_add(&other.neg())
    }

    /// Upstream's canonical string, without the parse cache.
    fn canonical(&self) -> String {
        if self.mantissa == 0 {
            return "0".to_string();
        }
        let sign = if self.negative { "-" } else { "" };
        let mut format = self.format;
        if format == Format::BinarySI {
            let small = cmp_magnitude(self.mantissa, self.scale, 1024, 0) == Ordering::Less;
            if small || self.scale < 0 {
                format = Format::DecimalSI;
            } else if let Some(whole) = u32::try_from(self.scale)
                .ok()
                .and_then(pow10)
                .and_then(|p| self.mantissa.checked_mul(p))
            {
                let mut number = whole;
                let mut exponent = 0;
                while exponent < 6 && number % 1024 == 0 {
                    number /= 1024;
                    exponent += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exponent];
                return format!("{sign}{number}{suffix}");
            } else {
                format = Format::DecimalSI;
            }
        }
        // Decimal: the largest exponent that is a multiple of 3 and keeps an integer.
        let mut number = self.mantissa;
        let mut exponent = self.scale;
        let r = exponent.rem_euclid(3);
        if r != 0 {
            match pow10(r as u32).and_then(|p| number.checked_mul(p)) {
                Some(n) => {
                    number = n;
                    exponent -= r;
                }
                None => return format!("{sign}{number}e{exponent}"),
            }
        }
        let suffix = match (format, exponent) {
            (_, 0) => String::new(),
            (Format::DecimalSI, -9) => "n".to_string(),
            (Format::DecimalSI, -6) => "u".to_string(),
            (Format::DecimalSI, -3) => "m".to_string(),
            (Format::DecimalSI, 3) => "k".to_string(),
            (Format::DecimalSI, 6) => "M".to_string(),
            (Format::DecimalSI, 9) => "G".to_string(),
            (Format::DecimalSI, 12) => "T".to_string(),
            (Format::DecimalSI, 15) => "P".to_string(),
            (Format::DecimalSI, 18) => "E".to_string(),
            (_, e) => format!("e{e}"),
        };
        format!("{sign}{number}{suffix}")
    }
}

impl fmt::Display for Quantity {
    /// The canonical form: `1500m`, `1Gi`, `1e3`, `0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cached {
            Some(s) => f.write_str(s),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Quantity, QuantityError> {
        Quantity::parse(s)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Quantity) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Quantity) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Quantity) -> Ordering {
        match (self.sign(), other.sign()) {
            (a, b) if a != b => a.cmp(&b),
            (0, _) => Ordering::Equal,
            (1, _) => cmp_magnitude(self.mantissa, self.scale, other.mantissa, other.scale),
            _ => cmp_magnitude(other.mantissa, other.scale, self.mantissa, self.scale),
        }
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Quantity, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Quantity::from_json(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn dec(m: i128, exp: i32, format: Format) -> Quantity {
        Quantity::from_scaled(m, exp, format)
    }

    #[test]
    fn parse_table() {
        use Format::*;
        let table: Vec<(&str, Quantity)> = vec![
            ("0", dec(0, 0, DecimalSI)),
            ("0n", dec(0, 0, DecimalSI)),
            ("0u", dec(0, 0, DecimalSI)),
            ("0m", dec(0, 0, DecimalSI)),
            ("0Ki", dec(0, 0, BinarySI)),
            ("0k", dec(0, 0, DecimalSI)),
            ("0Mi", dec(0, 0, BinarySI)),
            ("0M", dec(0, 0, DecimalSI)),
            ("0Gi", dec(0, 0, BinarySI)),
            ("0G", dec(0, 0, DecimalSI)),
            ("0Ti", dec(0, 0, BinarySI)),
            ("0T", dec(0, 0, DecimalSI)),
            ("1", dec(1, 0, DecimalSI)),
            ("1Ki", dec(1024, 0, BinarySI)),
            ("8Ki", dec(8 * 1024, 0, BinarySI)),
            ("7Mi", dec(7 * 1024 * 1024, 0, BinarySI)),
            ("6Gi", dec(6 << 30, 0, BinarySI)),
            ("5Ti", dec(5 << 40, 0, BinarySI)),
            ("4Pi", dec(4 << 50, 0, BinarySI)),
            ("3Ei", dec(3 << 60, 0, BinarySI)),
            ("10Ti", dec(10 << 40, 0, BinarySI)),
            ("100Ti", dec(100 << 40, 0, BinarySI)),
            ("5n", dec(5, -9, DecimalSI)),
            ("4u", dec(4, -6, DecimalSI)),
            ("3m", dec(3, -3, DecimalSI)),
            ("9", dec(9, 0, DecimalSI)),
            ("8k", dec(8, 3, DecimalSI)),
            ("50k", dec(5, 4, DecimalSI)),
            ("7M", dec(7, 6, DecimalSI)),
            ("6G", dec(6, 9, DecimalSI)),
            ("5T", dec(5, 12, DecimalSI)),
            ("40T", dec(4, 13, DecimalSI)),
            ("300T", dec(3, 14, DecimalSI)),
            ("2P", dec(2, 15, DecimalSI)),
            ("1E", dec(1, 18, DecimalSI)),
            ("1E-3", dec(1, -3, DecimalExponent)),
            ("1e3", dec(1, 3, DecimalExponent)),
            ("1E6", dec(1, 6, DecimalExponent)),
            ("1e9", dec(1, 9, DecimalExponent)),
            ("1E12", dec(1, 12, DecimalExponent)),
            ("1e15", dec(1, 15, DecimalExponent)),
            ("1E18", dec(1, 18, DecimalExponent)),
            ("1e14", dec(1, 14, DecimalExponent)),
            ("1e13", dec(1, 13, DecimalExponent)),
            ("100.035k", dec(100035, 0, DecimalSI)),
            ("0.001", dec(1, -3, DecimalSI)),
            ("0.0005k", dec(5, -1, DecimalSI)),
            ("0.005", dec(5, -3, DecimalSI)),
            ("0.05", dec(5, -2, DecimalSI)),
            ("0.5", dec(5, -1, DecimalSI)),
            ("0.00050k", dec(5, -1, DecimalSI)),
            ("0.00500", dec(5, -3, DecimalSI)),
            ("0.05000", dec(5, -2, DecimalSI)),
            ("0.50000", dec(5, -1, DecimalSI)),
            ("0.5e0", dec(5, -1, DecimalExponent)),
            ("0.5e-1", dec(5, -2, DecimalExponent)),
            ("0.5e-2", dec(5, -3, DecimalExponent)),
            ("10.035M", dec(10035, 3, DecimalSI)),
            ("1.2e3", dec(12, 2, DecimalExponent)),
            ("1.3E+6", dec(13, 5, DecimalExponent)),
            ("1.40e9", dec(14, 8, DecimalExponent)),
            ("1.53E12", dec(153, 10, DecimalExponent)),
            ("1.6e15", dec(16, 14, DecimalExponent)),
            ("1.7E18", dec(17, 17, DecimalExponent)),
            ("9.01", dec(901, -2, DecimalSI)),
            ("8.1k", dec(81, 2, DecimalSI)),
            ("7.123456M", dec(7123456, 0, DecimalSI)),
            ("6.987654321G", dec(6987654321, 0, DecimalSI)),
            ("5.444T", dec(5444, 9, DecimalSI)),
            ("40.1T", dec(401, 11, DecimalSI)),
            ("300.2T", dec(3002, 11, DecimalSI)),
            ("2.5P", dec(25, 14, DecimalSI)),
            ("1.01E", dec(101, 16, DecimalSI)),
            ("3.001n", dec(4, -9, DecimalSI)),
            ("1.1E-9", dec(2, -9, DecimalExponent)),
            ("0.0000000001", dec(1, -9, DecimalSI)),
            ("0.0000000005", dec(1, -9, DecimalSI)),
            ("0.00000000050", dec(1, -9, DecimalSI)),
            ("0.5e-9", dec(1, -9, DecimalExponent)),
            ("0.9n", dec(1, -9, DecimalSI)),
            ("0.00000012345", dec(124, -9, DecimalSI)),
            ("0.00000012354", dec(124, -9, DecimalSI)),
            ("9Ei", dec(i64::MAX.into(), 0, BinarySI)),
            ("9223372036854775807Ki", dec(i64::MAX.into(), 0, BinarySI)),
            ("12E", dec(12, 18, DecimalSI)),
            ("100.035Ki", dec(10243584, -2, BinarySI)),
            ("0.5Mi", dec(512 * 1024, 0, BinarySI)),
            ("0.05Gi", dec(536870912, -1, BinarySI)),
            ("0.025Ti", dec(274877906944, -1, BinarySI)),
            ("0.000000000001Ki", dec(2, -9, DecimalSI)),
            (".001", dec(1, -3, DecimalSI)),
            (".0001k", dec(100, -3, DecimalSI)),
            ("1.", dec(1, 0, DecimalSI)),
            ("1.G", dec(1, 9, DecimalSI)),
            (".", dec(0, 0, DecimalSI)),
        ];
        for (input, want) in &table {
            let got = q(input);
            assert_eq!(&got, want, "{input}: got {got}, want {want}");
            assert_eq!(got.format(), want.format(), "{input}");
            // the same with an explicit sign
            let negative = q(&format!("-{input}"));
            assert_eq!(negative, want.neg(), "-{input}");
            assert_eq!(negative.format(), want.format(), "-{input}");
            let positive = q(&format!("+{input}"));
            assert_eq!(&positive, want, "+{input}");
        }
    }

    #[test]
    fn parse_invalid() {
        for input in [
            "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-", " 1",
            "1 ", "", "e", "1e", "Mi5", "1K", "1Ki5", "٣",
        ] {
            assert!(Quantity::parse(input).is_err(), "{input:?} parsed");
        }
        assert_eq!(Quantity::parse(""), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("1 "), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("1i"), Err(QuantityError::Suffix));
        assert_eq!(
            QuantityError::FormatWrong.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(
            QuantityError::Suffix.to_string(),
            "unable to parse quantity's suffix"
        );
        assert_eq!(
            QuantityError::Numeric.to_string(),
            "unable to parse numeric part of quantity"
        );
    }

    #[test]
    fn canonical_strings() {
        use Format::*;
        let table: Vec<(Quantity, &str, &str)> = vec![
            (dec(1 << 30, 0, BinarySI), "1Gi", "1024Mi"),
            (dec(300 << 20, 0, BinarySI), "300Mi", "307200Ki"),
            (dec(6 * 1024, 0, BinarySI), "6Ki", ""),
            (dec(1001 << 30, 0, BinarySI), "1001Gi", "1025024Mi"),
            (dec(1 << 40, 0, BinarySI), "1Ti", "1024Gi"),
            (dec(5, 0, BinarySI), "5", "5000m"),
            (dec(500, -3, BinarySI), "500m", "0.5"),
            (dec(1, 9, DecimalSI), "1G", "1000M"),
            (dec(1000, 6, DecimalSI), "1G", "0.001T"),
            (dec(1000000, 3, DecimalSI), "1G", ""),
            (dec(1000000000, 0, DecimalSI), "1G", ""),
            (dec(1, -3, DecimalSI), "1m", "1000u"),
            (dec(80, -3, DecimalSI), "80m", ""),
            (dec(1080, -3, DecimalSI), "1080m", "1.08"),
            (dec(108, -2, DecimalSI), "1080m", "1080000000n"),
            (dec(10800, -4, DecimalSI), "1080m", ""),
            (dec(300, 6, DecimalSI), "300M", ""),
            (dec(1, 12, DecimalSI), "1T", ""),
            (dec(1, 18, DecimalSI), "1E", ""),
            (dec(1, 21, DecimalSI), "1e21", "1000E"),
            (dec(5, 21, DecimalSI), "5e21", "5000E"),
            (dec(1, 24, DecimalSI), "1e24", "1000000E"),
            (dec(1234567, 6, DecimalSI), "1234567M", ""),
            (dec(1234567, -3, BinarySI), "1234567m", ""),
            (dec(3, 3, DecimalSI), "3k", ""),
            (dec(1025, 0, BinarySI), "1025", ""),
            (dec(0, 0, DecimalSI), "0", ""),
            (dec(0, 0, BinarySI), "0", ""),
            (dec(1, 9, DecimalExponent), "1e9", ".001e12"),
            (dec(1, -3, DecimalExponent), "1e-3", "0.001e0"),
            (dec(1, -9, DecimalExponent), "1e-9", "1000e-12"),
            (dec(80, -3, DecimalExponent), "80e-3", ""),
            (dec(300, 6, DecimalExponent), "300e6", ""),
            (dec(1, 12, DecimalExponent), "1e12", ""),
            (dec(1, 3, DecimalExponent), "1e3", ""),
            (dec(3, 3, DecimalExponent), "3e3", ""),
            (dec(3, 3, DecimalSI), "3k", ""),
            (dec(0, 0, DecimalExponent), "0", "00"),
            (dec(1, -9, DecimalSI), "1n", ""),
            (dec(80, -9, DecimalSI), "80n", ""),
            (dec(1080, -9, DecimalSI), "1080n", ""),
            (dec(108, -8, DecimalSI), "1080n", ""),
            (dec(10800, -10, DecimalSI), "1080n", ""),
            (dec(1, -6, DecimalSI), "1u", ""),
            (dec(80, -6, DecimalSI), "80u", ""),
            (dec(1080, -6, DecimalSI), "1080u", ""),
        ];
        for (value, canonical, alternate) in &table {
            assert_eq!(value.to_string(), *canonical, "{value:?}");
            // the canonical form parses back to the same string and value
            let reparsed = q(canonical);
            assert_eq!(reparsed.to_string(), *canonical);
            assert_eq!(&reparsed, value);
            if !alternate.is_empty() {
                assert_eq!(
                    q(alternate).to_string(),
                    *canonical,
                    "alternate {alternate}"
                );
            }
            if !value.is_zero() {
                assert_eq!(value.neg().to_string(), format!("-{canonical}"));
            }
        }
    }

    #[test]
    fn parse_emit() {
        for (input, want) in [
            ("1Ki", "1Ki"),
            ("1Mi", "1Mi"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1000M", "1G"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("1.5", "1500m"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("500m", "500m"),
            ("0.1", "100m"),
            ("2000m", "2"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("129M", "129M"),
            ("123Mi", "123Mi"),
            ("1e3", "1e3"),
            ("1000", "1k"),
            ("-0", "0"),
            ("-.", "0"),
            ("0.100", "100m"),
        ] {
            assert_eq!(q(input).to_string(), want, "{input}");
            if input.starts_with('-') {
                continue;
            }
            let negative = q(&format!("-{input}"));
            if !negative.is_zero() {
                assert_eq!(negative.to_string(), format!("-{want}"), "-{input}");
            }
        }
    }

    #[test]
    fn upstream_string_cache_quirks() {
        // Inputs already in canonical shape are echoed, sign and all, as upstream does.
        assert_eq!(q("+1k").to_string(), "+1k");
        assert_eq!(q("+9Ki").to_string(), "+9Ki");
        assert_eq!(q("0").to_string(), "0");
        assert_eq!(q("00100m").to_string(), "00100m");
        assert_eq!(q("00100m"), q("100m"));
        // ...but not once arithmetic has happened
        assert_eq!(
            q("+1k")
                .checked_add(&Quantity::zero())
                .map(|x| x.to_string())
                .as_deref(),
            Some("1k")
        );
    }

    #[test]
    fn comparisons() {
        assert_eq!(q("0").cmp(&q("0")), Ordering::Equal);
        assert_eq!(q("100m").cmp(&q("50m")), Ordering::Greater);
        assert_eq!(q("50m").cmp(&q("100m")), Ordering::Less);
        assert_eq!(q("10000T").cmp(&q("100Gi")), Ordering::Greater);
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("1"), q("1000m"));
        assert!(q("-1") < q("0"));
        assert!(q("-2") < q("-1"));
        assert!(q("1e100") > q("1e99"));
        assert!(q("999e97") < q("1e100"));
        assert!(q("1n") > q("0"));
        let items: Vec<(Quantity, Quantity, Ordering)> = vec![
            (
                dec(901, -2, Format::DecimalSI),
                dec(901, -2, Format::DecimalSI),
                Ordering::Equal,
            ),
            (
                dec(90, -1, Format::DecimalSI),
                dec(901, -2, Format::DecimalSI),
                Ordering::Less,
            ),
            (
                dec(901, -2, Format::DecimalSI),
                dec(900, -2, Format::DecimalSI),
                Ordering::Greater,
            ),
            (
                dec(0, 1, Format::DecimalSI),
                dec(0, -1, Format::DecimalSI),
                Ordering::Equal,
            ),
            (
                dec(800, -3, Format::DecimalSI),
                dec(1, 0, Format::DecimalSI),
                Ordering::Less,
            ),
            (
                dec(800, -3, Format::DecimalSI),
                dec(79, -2, Format::DecimalSI),
                Ordering::Greater,
            ),
            (
                dec(i64::MAX.into(), 0, Format::DecimalSI),
                dec(1, -1, Format::DecimalSI),
                Ordering::Greater,
            ),
            (
                dec(i64::MAX.into(), -16, Format::DecimalSI),
                dec(1, 3, Format::DecimalSI),
                Ordering::Less,
            ),
            (
                dec(i64::MIN.into(), 0, Format::DecimalSI),
                dec(0, 0, Format::DecimalSI),
                Ordering::Less,
            ),
            (
                dec(i64::MIN.into(), -18, Format::DecimalSI),
                dec(-1, 0, Format::DecimalSI),
                Ordering::Less,
            ),
            (
                dec(i64::MIN.into(), -19, Format::DecimalSI),
                dec(-1, 0, Format::DecimalSI),
                Ordering::Greater,
            ),
            (
                dec(1_000_000_000_000_000_000, -17, Format::DecimalSI),
                dec(1, 1, Format::DecimalSI),
                Ordering::Equal,
            ),
            (
                dec(1_000_000_000_000_000_001, -17, Format::DecimalSI),
                dec(1, 1, Format::DecimalSI),
                Ordering::Greater,
            ),
            (
                dec(999_999_999_999_999_999, -17, Format::DecimalSI),
                dec(1, 1, Format::DecimalSI),
                Ordering::Less,
            ),
            (
                dec(-1_000_000_000_000_000_000, -17, Format::DecimalSI),
                dec(-10, 0, Format::DecimalSI),
                Ordering::Equal,
            ),
        ];
        for (a, b, want) in items {
            assert_eq!(a.cmp(&b), want, "{a:?} vs {b:?}");
            assert_eq!(b.cmp(&a), want.reverse(), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn milli_and_whole_values() {
        assert_eq!(q("500m").milli_value(), 500);
        assert_eq!(q("1").milli_value(), 1000);
        assert_eq!(q("2.5").milli_value(), 2500);
        assert_eq!(q("1Gi").milli_value(), 1_073_741_824_000);
        assert_eq!(q("1n").milli_value(), 1, "rounds up");
        assert_eq!(q("-1n").milli_value(), -1, "rounds away from zero");
        assert_eq!(q("1500m").value(), 2);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("100Mi").value(), 100 << 20);
        assert_eq!(q("0").value(), 0);
        assert_eq!(q("1e100").value(), i128::MAX, "saturates");
        assert_eq!(q("-1e100").milli_value(), i128::MIN);
        assert_eq!(q("1e100").scaled_value(0), None);
        assert_eq!(q("1k").scaled_value(3), Some(1));
        assert_eq!(q("1500").scaled_value(3), Some(2));
        assert_eq!(q("9.01").scaled_value(-1), Some(91));
        assert_eq!(q("-9.01").scaled_value(0), Some(-10));
        assert!((q("1.5").as_f64() - 1.5).abs() < 1e-12);
    }

    #[test]
    fn constructors_and_arithmetic() {
        for (milli, format, want) in [
            (1, Format::DecimalSI, "1m"),
            (1000, Format::DecimalSI, "1"),
            (1234000, Format::DecimalSI, "1234"),
            (1024, Format::BinarySI, "1024m"),
            (1024 * 1024, Format::BinarySI, "1048576m"),
            (1000000, Format::DecimalExponent, "1e3"),
        ] {
            let value = Quantity::from_milli(milli, format);
            assert_eq!(value.to_string(), want);
            assert_eq!(value.milli_value(), milli);
        }
        for (v, format, want) in [
            (1, Format::DecimalSI, "1"),
            (1000, Format::DecimalSI, "1k"),
            (1234000, Format::DecimalSI, "1234k"),
            (1024, Format::BinarySI, "1Ki"),
            (1000000, Format::DecimalExponent, "1e6"),
            (1024 * 1024, Format::BinarySI, "1Mi"),
        ] {
            assert_eq!(Quantity::from_value(v, format).to_string(), want);
        }
        let sum = q("100m").checked_add(&q("1")).map(|x| x.to_string());
        assert_eq!(sum.as_deref(), Some("1100m"));
        let sum = q("1Gi").checked_add(&q("1Gi")).map(|x| x.to_string());
        assert_eq!(sum.as_deref(), Some("2Gi"));
        let zero = Quantity::zero();
        for value in ["100m", "1Gi"] {
            assert_eq!(
                q(value)
                    .checked_add(&zero)
                    .map(|x| x.to_string())
                    .as_deref(),
                Some(value)
            );
            assert_eq!(
                zero.checked_add(&q(value))
                    .map(|x| x.to_string())
                    .as_deref(),
                Some(value)
            );
            assert_eq!(
                q(value)
                    .checked_sub(&zero)
                    .map(|x| x.to_string())
                    .as_deref(),
                Some(value)
            );
            assert_eq!(
                zero.checked_sub(&q(value)).map(|x| x.to_string()),
                Some(format!("-{value}"))
            );
        }
        assert_eq!(dec(901, -2, Format::DecimalSI).neg().to_string(), "-9010m");
        assert!(q("1e38").checked_add(&q("1n")).is_none());
        assert_eq!(q("1").sign(), 1);
        assert_eq!(q("-1").sign(), -1);
        assert_eq!(q("-0").sign(), 0);
    }

    #[test]
    fn json_forms() {
        use serde_json::json;
        for (input, want) in [
            (json!(" 1"), "1"),
            (json!("1 "), "1"),
            (json!(1), "1"),
            (json!(10), "10"),
            (json!(-1), "-1"),
            (json!(0.5), "500m"),
            (json!("250m"), "250m"),
            (serde_json::Value::Null, "0"),
        ] {
            let got = Quantity::from_json(&input).map(|x| x.to_string());
            assert_eq!(got.as_deref(), Ok(want), "{input}");
        }
        assert!(Quantity::from_json(&json!(true)).is_err());
        let parsed: Result<Vec<Quantity>, _> = serde_json::from_value(json!(["1.5", 2, "1Gi"]));
        let back = parsed.map(|v| serde_json::to_value(v).unwrap_or_default());
        assert_eq!(back.ok(), Some(json!(["1500m", "2", "1Gi"])));
        assert!(serde_json::from_value::<Quantity>(json!("x")).is_err());
    }

    #[test]
    fn huge_and_long_inputs_do_not_panic() {
        // decimal exponents are canonicalized to multiples of three, as upstream does
        assert_eq!(q("1e100").to_string(), "10e99");
        assert_eq!(q("1e14").to_string(), "100e12");
        assert_eq!(q("1e2147483647").to_string(), "10e2147483646");
        let _ = Quantity::parse("1e99999999999");
        let _ = Quantity::parse("1e-2147483648");
        let _ = Quantity::parse("0.1e-2147483648");
        let _ = Quantity::parse(&format!("{}e2147483647", "9".repeat(80)));
        let long = format!("0.{}1", "0".repeat(60));
        assert_eq!(q(&long).to_string(), "1n");
        let many = "9".repeat(60);
        assert!(q(&many) > q("1e59"));
        assert_eq!(q(&format!("{many}Ei")).to_string(), "9223372036854775807");
        assert_eq!(q("0.0000000000001Ei").value(), 115293);
        assert_eq!(
            q("1.000000000000000000000000000000000000000000000001").to_string(),
            "1000000001n"
        );
    }
}
