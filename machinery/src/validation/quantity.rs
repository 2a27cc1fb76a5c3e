//! `resource.Quantity`: parsing with upstream's grammar and errors, comparison, and the
//! canonical form the API server writes back (`0.5` becomes `500m`, `1024Mi` becomes `1Gi`,
//! `1000` becomes `1k`).
//!
//! A quantity is kept as a count of nano-units in an `i128`, which holds every value upstream
//! can hold (it caps at 2^63-1 units and rounds anything finer than a nano-unit up).

use std::cmp::Ordering;
use std::fmt;

/// Upstream's `ErrFormatWrong`.
pub const FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// Upstream's `ErrNumeric`.
pub const NUMERIC_ERROR: &str = "unable to parse numeric part of quantity";
/// Upstream's `ErrSuffix`.
pub const SUFFIX_ERROR: &str = "unable to parse quantity's suffix";

const NANO: i128 = 1_000_000_000;
/// The largest quantity, in nano-units: 2^63-1 units.
const MAX_NANOS: i128 = (i64::MAX as i128) * NANO;

/// How a quantity prints: the family of its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// A parsed quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
    pub format: Format,
}

/// Why a string is not a quantity (the message is upstream's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QuantityError(pub &'static str);

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// `a / b` rounded away from zero (b > 0).
fn div_round_up(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b == 0 {
        q
    } else if a > 0 {
        q + 1
    } else {
        q - 1
    }
}

impl Quantity {
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: Format::DecimalSI,
    };

    /// A whole number of units in the decimal format.
    pub fn from_units(units: i64) -> Quantity {
        Quantity {
            nanos: i128::from(units) * NANO,
            format: Format::DecimalSI,
        }
    }

    /// Upstream's `ParseQuantity`.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError(FORMAT_ERROR));
        }
        let b = s.as_bytes();
        let mut pos = 0;
        let mut positive = true;
        match b[0] {
            b'-' => {
                positive = false;
                pos = 1;
            }
            b'+' => pos = 1,
            _ => {}
        }
        let num_start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let num = &s[num_start..pos];
        let mut denom = "";
        if pos < b.len() && b[pos] == b'.' {
            pos += 1;
            let d_start = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            denom = &s[d_start..pos];
        }
        let suffix_start = pos;
        while pos < b.len() && b"eEinumkKMGTP".contains(&b[pos]) {
            pos += 1;
        }
        if pos < b.len() && (b[pos] == b'-' || b[pos] == b'+') {
            pos += 1;
        }
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos != b.len() {
            return Err(QuantityError(FORMAT_ERROR));
        }
        let suffix = &s[suffix_start..];
        let (base, exponent, format) =
            interpret_suffix(suffix).ok_or(QuantityError(SUFFIX_ERROR))?;

        // The digits as one integer, and how many of them follow the decimal point.
        let digits = format!("{num}{denom}");
        let digits = digits.trim_start_matches('0');
        let mut nanos: i128 = 0;
        let mut saturated = false;
        for c in digits.bytes() {
            match nanos
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(c - b'0')))
            {
                Some(v) if v <= MAX_NANOS => nanos = v,
                _ => {
                    saturated = true;
                    break;
                }
            }
        }
        let denom_len = denom.len() as i32;
        if !saturated && nanos != 0 {
            // value = digits * base^exponent / 10^denom_len, in nano-units.
            let scaled = if base == 10 {
                let shift = 9 + exponent - denom_len;
                if shift >= 0 {
                    pow10(shift as u32).and_then(|p| nanos.checked_mul(p))
                } else {
                    pow10((-shift) as u32)
                        .map(|p| div_round_up(nanos, p))
                        .or(Some(1))
                }
            } else {
                1i128
                    .checked_shl(exponent as u32)
                    .and_then(|m| nanos.checked_mul(m))
                    .and_then(|v| v.checked_mul(NANO))
                    .and_then(|v| pow10(denom_len as u32).map(|p| div_round_up(v, p)))
            };
            match scaled {
                Some(v) if v <= MAX_NANOS => nanos = v,
                _ => saturated = true,
            }
        }
        if saturated {
            nanos = MAX_NANOS;
        }
        let mut format = format;
        if format == Format::BinarySI && nanos > 0 && nanos < NANO {
            format = Format::DecimalSI;
        }
        Ok(Quantity {
            nanos: if positive { nanos } else { -nanos },
            format,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// Upstream's `Value()`: whole units, rounded up.
    pub fn value(&self) -> i128 {
        div_round_up(self.nanos, NANO)
    }

    /// Upstream's `MilliValue()`: thousandths, rounded up.
    pub fn milli_value(&self) -> i128 {
        div_round_up(self.nanos, 1_000_000)
    }

    /// Whether the quantity is a whole number of units.
    pub fn is_integer(&self) -> bool {
        self.nanos % NANO == 0
    }

    /// Upstream's `RoundUp(-3)`, applied to every resource list by defaulting.
    pub fn round_up_to_milli(&mut self) {
        self.nanos = div_round_up(self.nanos, 1_000_000) * 1_000_000;
    }

    /// The sum, keeping this quantity's format.
    pub fn add(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: (self.nanos + other.nanos).clamp(-MAX_NANOS, MAX_NANOS),
            format: self.format,
        }
    }

    /// The amount in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }
}

/// `(base, exponent, format)` of a suffix.
fn interpret_suffix(suffix: &str) -> Option<(i32, i32, Format)> {
    let dec = |e| Some((10, e, Format::DecimalSI));
    let bin = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            let e: i32 = s[1..].parse().ok()?;
            Some((10, e, Format::DecimalExponent))
        }
        _ => None,
    }
}

impl fmt::Display for Quantity {
    /// Upstream's canonical form (`CanonicalizeBytes`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.abs();
        let format = match self.format {
            Format::BinarySI if abs < 1024 * NANO || abs % NANO != 0 => Format::DecimalSI,
            other => other,
        };
        if format == Format::BinarySI {
            let mut units = abs / NANO;
            let mut exp = 0;
            while units % 1024 == 0 && exp < 6 {
                units /= 1024;
                exp += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
            return write!(f, "{sign}{units}{suffix}");
        }
        let mut mantissa = abs;
        let mut exp: i32 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exp += 1;
        }
        let r = exp.rem_euclid(3);
        mantissa *= 10i128.pow(r as u32);
        exp -= r;
        if format == Format::DecimalExponent {
            return if exp == 0 {
                write!(f, "{sign}{mantissa}")
            } else {
                write!(f, "{sign}{mantissa}e{exp}")
            };
        }
        if exp > 18 {
            mantissa *= 10i128.pow((exp - 18) as u32);
            exp = 18;
        }
        let suffix = match exp {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            _ => "E",
        };
        write!(f, "{sign}{mantissa}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Quantity::parse(s)
            .map(|q| q.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn canonical_forms() {
        let cases = [
            ("0.5", "500m"),
            ("100m", "100m"),
            ("1000m", "1"),
            ("1000", "1k"),
            ("1", "1"),
            ("0", "0"),
            ("05", "5"),
            ("128Mi", "128Mi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("2000Mi", "2000Mi"),
            ("1e3", "1e3"),
            ("12e3", "12e3"),
            ("1.5", "1500m"),
            ("1.5e3", "1500"),
            ("0.1Ki", "102400m"),
            ("1n", "1n"),
            ("1.5n", "2n"),
            ("-1", "-1"),
            ("10k", "10k"),
            ("1.", "1"),
            ("1E", "1E"),
            ("1Ei", "1Ei"),
        ];
        for (input, want) in cases {
            assert_eq!(canon(input), want, "{input}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(canon(""), FORMAT_ERROR);
        assert_eq!(canon("abc"), FORMAT_ERROR);
        assert_eq!(canon("1 Gi"), FORMAT_ERROR);
        assert_eq!(canon("1Qi"), FORMAT_ERROR);
        assert_eq!(canon("1Ki1"), SUFFIX_ERROR);
    }

    #[test]
    fn arithmetic() {
        let mut q = Quantity::parse("1.0001").expect("valid in test");
        q.round_up_to_milli();
        assert_eq!(q.to_string(), "1001m");
        assert!(
            Quantity::parse("1Gi").expect("valid in test")
                > Quantity::parse("1G").expect("valid in test")
        );
        assert_eq!(Quantity::parse("2.5").expect("valid in test").value(), 3);
        assert_eq!(
            Quantity::parse("100m")
                .expect("valid in test")
                .milli_value(),
            100
        );
        assert!(
            Quantity::parse("500m")
                .expect("valid in test")
                .add(&Quantity::parse("0.5").expect("valid in test"))
                == Quantity::parse("1").expect("valid in test")
        );
    }
}
