//! Exact amounts of money in fen (0.01 CNY), parsed from the literal text an agent sent.
//!
//! Amounts never pass through floating point: a JSON number is read from its literal text (the crate
//! builds serde_json with `arbitrary_precision`, so `12.30` stays `"12.30"`), and strings are parsed the
//! same way. Anything that is not plain decimal yuan with at most two decimals in
//! `0.01..=100000000.00` is refused with a message that says what was wrong.

use std::fmt;

use serde_json::Value;

/// The largest amount any gateway here accepts: 100,000,000.00 yuan.
pub const MAX_FEN: u64 = 100_000_000 * 100;

/// An amount in fen. Always positive and at most [`MAX_FEN`] when it came from [`Fen::parse_yuan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fen(pub u64);

impl Fen {
    /// Parses yuan text (`"12.3"`, `"12.30"`, `"12"`) into fen.
    ///
    /// # Errors
    /// A sentence naming what is wrong: empty, a sign, an exponent, more than two decimals, not a
    /// number, zero, or above the maximum.
    pub fn parse_yuan(text: &str) -> Result<Fen, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("the amount is empty".into());
        }
        if t.starts_with('-') {
            return Err(format!("`{t}` is negative; amounts must be at least 0.01"));
        }
        if t.starts_with('+') {
            return Err(format!("`{t}` has a sign; write the amount as plain yuan, e.g. 12.30"));
        }
        if t.contains(['e', 'E']) {
            return Err(format!("`{t}` uses an exponent; write the amount as plain yuan, e.g. 12.30"));
        }
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (t, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(format!("`{t}` is not a decimal amount in yuan, e.g. 12.30"));
        }
        let frac = frac.unwrap_or("");
        if frac.len() > 2 {
            return Err(format!("`{t}` has more than two decimal places; the smallest unit is 0.01 yuan"));
        }
        let int_value: u64 = if int.len() > 9 {
            return Err(format!("`{t}` is above the maximum of 100000000.00"));
        } else {
            int.parse().map_err(|_| format!("`{t}` is not a decimal amount"))?
        };
        let mut frac_value: u64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            frac_value += u64::from(b - b'0') * if i == 0 { 10 } else { 1 };
        }
        let fen = int_value * 100 + frac_value;
        if fen == 0 {
            return Err(format!("`{t}` is zero; amounts must be at least 0.01"));
        }
        if fen > MAX_FEN {
            return Err(format!("`{t}` is above the maximum of 100000000.00"));
        }
        Ok(Fen(fen))
    }

    /// Parses a JSON argument: a number (read from its literal text) or a string.
    ///
    /// # Errors
    /// As [`Fen::parse_yuan`], plus a message for any other JSON type.
    pub fn from_json(value: &Value) -> Result<Fen, String> {
        match value {
            Value::Number(n) => Fen::parse_yuan(&n.to_string()),
            Value::String(s) => Fen::parse_yuan(s),
            other => Err(format!("expected a number or a string in yuan such as 12.30, got {}", json_type(other))),
        }
    }

    /// Parses an amount a gateway sent (it may lack decimals or be a JSON number); zero is allowed.
    pub fn from_gateway(text: &str) -> Option<Fen> {
        if text.trim() == "0" || text.trim() == "0.00" || text.trim() == "0.0" {
            return Some(Fen(0));
        }
        Fen::parse_yuan(text).ok()
    }

    /// Yuan with exactly two decimals: `"12.30"`.
    pub fn to_yuan(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_yuan())
    }
}

/// A short name for a JSON value's type, for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_decimal_yuan() {
        assert_eq!(Fen::parse_yuan("12.3"), Ok(Fen(1230)));
        assert_eq!(Fen::parse_yuan("12.30"), Ok(Fen(1230)));
        assert_eq!(Fen::parse_yuan("0.01"), Ok(Fen(1)));
        assert_eq!(Fen::parse_yuan("12"), Ok(Fen(1200)));
        assert_eq!(Fen::parse_yuan("100000000"), Ok(Fen(MAX_FEN)));
        assert_eq!(Fen::parse_yuan("100000000.00"), Ok(Fen(MAX_FEN)));
        assert_eq!(Fen::parse_yuan("007.5"), Ok(Fen(750)));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "0.001",
            "-1",
            "0",
            "0.00",
            "1e2",
            "1E2",
            "12.345",
            "NaN",
            "nan",
            "inf",
            "Infinity",
            "",
            " ",
            "100000000.01",
            "100000001",
            "99999999999999999999",
            "1.",
            ".5",
            "1,00",
            "+1",
            "0x10",
            "1 2",
            "１２",
            "1.2.3",
        ] {
            assert!(Fen::parse_yuan(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn json_numbers_are_read_from_their_literal_text() {
        let v: Value = serde_json::from_str("12.30").unwrap();
        assert_eq!(Fen::from_json(&v), Ok(Fen(1230)));
        let v: Value = serde_json::from_str("1.005").unwrap();
        assert!(Fen::from_json(&v).is_err());
        let v: Value = serde_json::from_str("1e2").unwrap();
        assert!(Fen::from_json(&v).is_err());
        let v: Value = serde_json::from_str("0.1").unwrap();
        assert_eq!(Fen::from_json(&v), Ok(Fen(10)));
        assert!(Fen::from_json(&Value::Bool(true)).is_err());
        assert!(Fen::from_json(&Value::Null).is_err());
    }

    #[test]
    fn formats_with_two_decimals() {
        assert_eq!(Fen(1230).to_yuan(), "12.30");
        assert_eq!(Fen(1).to_yuan(), "0.01");
        assert_eq!(Fen(MAX_FEN).to_yuan(), "100000000.00");
    }

    #[test]
    fn gateway_amounts_may_be_zero() {
        assert_eq!(Fen::from_gateway("0"), Some(Fen(0)));
        assert_eq!(Fen::from_gateway("0.10"), Some(Fen(10)));
        assert_eq!(Fen::from_gateway("abc"), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn every_fen_amount_round_trips_through_yuan_text(fen in 1u64..=MAX_FEN) {
                let text = Fen(fen).to_yuan();
                prop_assert_eq!(Fen::parse_yuan(&text), Ok(Fen(fen)));
                let number: Value = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(Fen::from_json(&number), Ok(Fen(fen)));
            }

            #[test]
            fn parsing_arbitrary_text_never_panics_and_accepts_only_exact_amounts(text in ".{0,24}") {
                if let Ok(fen) = Fen::parse_yuan(&text) {
                    prop_assert!(fen.0 >= 1 && fen.0 <= MAX_FEN);
                    // Whatever was accepted means exactly what it says.
                    let t = text.trim();
                    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
                    prop_assert!(frac.len() <= 2);
                    let expected = int.parse::<u64>().unwrap() * 100 + format!("{frac:0<2}").parse::<u64>().unwrap();
                    prop_assert_eq!(fen.0, expected);
                }
            }

            #[test]
            fn three_decimals_are_always_refused(int in 0u64..1_000_000, frac in 0u32..1000) {
                let text = format!("{int}.{frac:03}");
                prop_assert!(Fen::parse_yuan(&text).is_err());
            }
        }
    }
}
