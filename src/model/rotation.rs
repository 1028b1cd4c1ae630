//! Rotation policy: pure functions from a policy, the last rotation and "now" to a due date
//! and a status. No I/O here, so every boundary is unit-tested.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::util::output::escape;

/// A rotation period: `90d`, `12w`, `6mo`, `1y`, `36h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Period {
    amount: u32,
    unit: PeriodUnit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeriodUnit {
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl Period {
    pub const fn days(amount: u32) -> Self {
        Period {
            amount,
            unit: PeriodUnit::Days,
        }
    }

    /// The period as a calendar span; `None` when jiff cannot represent it (its unit
    /// limits are about 20,000 years), never a panic.
    fn span(self) -> Option<Span> {
        let n = i64::from(self.amount);
        match self.unit {
            PeriodUnit::Hours => Span::new().try_hours(n),
            PeriodUnit::Days => Span::new().try_days(n),
            PeriodUnit::Weeks => Span::new().try_weeks(n),
            PeriodUnit::Months => Span::new().try_months(n),
            PeriodUnit::Years => Span::new().try_years(n),
        }
        .ok()
    }

    /// `at + self`, in calendar terms (UTC), so `1mo` from Jan 31 is Feb 28.
    pub fn after(self, at: Timestamp) -> Option<Timestamp> {
        at.to_zoned(TimeZone::UTC)
            .checked_add(self.span()?)
            .ok()
            .map(|z| z.timestamp())
    }

    /// `at - self`.
    pub fn before(self, at: Timestamp) -> Option<Timestamp> {
        at.to_zoned(TimeZone::UTC)
            .checked_sub(self.span()?)
            .ok()
            .map(|z| z.timestamp())
    }
}

/// The longest period accepted, in years.
const MAX_YEARS: u32 = 1000;

impl FromStr for Period {
    type Err = Error;
    fn from_str(input: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidValue {
            what: "duration",
            input: escape(input),
            reason: reason.into(),
        };
        let digits = input.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad(
                "expected a number and a unit, like 90d, 12w, 6mo, 1y or 36h",
            ));
        }
        let amount: u32 = input[..digits]
            .parse()
            .map_err(|_| bad("the number is too large"))?;
        if amount == 0 {
            return Err(bad("it must be longer than zero"));
        }
        let unit = match &input[digits..] {
            "h" => PeriodUnit::Hours,
            "d" => PeriodUnit::Days,
            "w" => PeriodUnit::Weeks,
            "mo" => PeriodUnit::Months,
            "y" => PeriodUnit::Years,
            _ => return Err(bad("the unit must be h, d, w, mo or y")),
        };
        let period = Period { amount, unit };
        // At most 1000 years, so that any rotation date plus the period stays inside the
        // calendar (jiff's ends at 9999): a longer one would make due dates vanish.
        let limit = Period {
            amount: MAX_YEARS,
            unit: PeriodUnit::Years,
        };
        match (
            period.after(Timestamp::UNIX_EPOCH),
            limit.after(Timestamp::UNIX_EPOCH),
        ) {
            (Some(end), Some(max)) if end <= max => Ok(period),
            _ => Err(bad("it is too long (at most 1000 years)")),
        }
    }
}

impl TryFrom<String> for Period {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        value.parse()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            PeriodUnit::Hours => "h",
            PeriodUnit::Days => "d",
            PeriodUnit::Weeks => "w",
            PeriodUnit::Months => "mo",
            PeriodUnit::Years => "y",
        };
        write!(f, "{}{unit}", self.amount)
    }
}

impl From<Period> for String {
    fn from(value: Period) -> Self {
        value.to_string()
    }
}

/// Now, to the second: the precision stored in the manifest and shown to people.
pub fn now() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// Parse `2027-01-31` (midnight UTC) or an RFC 3339 timestamp.
pub fn parse_date(input: &str) -> Result<Timestamp, Error> {
    if let Ok(at) = input.parse::<Timestamp>() {
        return Ok(at);
    }
    input
        .parse::<Date>()
        .ok()
        .and_then(|date| date.to_zoned(TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| Error::InvalidValue {
            what: "date",
            input: escape(input),
            reason: "expected a date like 2027-01-31 or an RFC 3339 timestamp".into(),
        })
}

/// A credential's rotation policy as the user set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The store's default period.
    Default,
    Every(Period),
    Due(Timestamp),
    /// The value's own expiry (a JWT's `exp`), when the user set no policy.
    Expiry(Timestamp),
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    DueSoon,
    Overdue,
    Never,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::DueSoon => "due-soon",
            Status::Overdue => "overdue",
            Status::Never => "never",
        }
    }
}

/// When a credential is due, given its policy, the store default and its last rotation.
pub fn due_at(policy: Policy, default: Period, rotated_at: Timestamp) -> Option<Timestamp> {
    match policy {
        Policy::Default => default.after(rotated_at),
        Policy::Every(period) => period.after(rotated_at),
        Policy::Due(at) | Policy::Expiry(at) => Some(at),
        Policy::Never => None,
    }
}

/// `overdue` once `now` reaches the due date; `due-soon` when it is within `window`.
pub fn status(due: Option<Timestamp>, now: Timestamp, window: Period) -> Status {
    let Some(due) = due else {
        return Status::Never;
    };
    if now >= due {
        Status::Overdue
    } else if window.before(due).is_none_or(|start| now >= start) {
        Status::DueSoon
    } else {
        Status::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn periods_parse_and_print() {
        for text in ["90d", "12w", "6mo", "1y", "36h"] {
            assert_eq!(text.parse::<Period>().unwrap().to_string(), text);
        }
        for bad in [
            "",
            "d",
            "90",
            "0d",
            "-1d",
            "1.5d",
            "90 d",
            "1m",
            "99999999999d",
            "1yr",
            "19999y",
            "240000mo",
            "9999999d",
            "1001y",
            "99999999h",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn calendar_arithmetic() {
        let p: Period = "1mo".parse().unwrap();
        assert_eq!(
            p.after(ts("2026-01-31T00:00:00Z")),
            Some(ts("2026-02-28T00:00:00Z"))
        );
        let p: Period = "36h".parse().unwrap();
        assert_eq!(
            p.after(ts("2026-01-01T00:00:00Z")),
            Some(ts("2026-01-02T12:00:00Z"))
        );
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2027-01-31").unwrap(),
            ts("2027-01-31T00:00:00Z")
        );
        assert_eq!(
            parse_date("2027-01-31T10:00:00+02:00").unwrap(),
            ts("2027-01-31T08:00:00Z")
        );
        assert!(parse_date("31/01/2027").is_err());
        assert!(parse_date("2027-02-30").is_err());
    }

    #[test]
    fn status_boundaries() {
        let window = Period::days(14);
        let due = ts("2026-06-15T00:00:00Z");
        assert_eq!(status(Some(due), due, window), Status::Overdue);
        assert_eq!(
            status(Some(due), ts("2026-06-14T23:59:59Z"), window),
            Status::DueSoon
        );
        assert_eq!(
            status(Some(due), ts("2026-06-01T00:00:00Z"), window),
            Status::DueSoon
        );
        assert_eq!(
            status(Some(due), ts("2026-05-31T23:59:59Z"), window),
            Status::Ok
        );
        assert_eq!(status(None, due, window), Status::Never);
    }

    #[test]
    fn due_from_policy() {
        let at = ts("2026-01-01T00:00:00Z");
        assert_eq!(
            due_at(Policy::Default, Period::days(90), at),
            Some(ts("2026-04-01T00:00:00Z"))
        );
        assert_eq!(due_at(Policy::Never, Period::days(90), at), None);
        assert_eq!(due_at(Policy::Due(at), Period::days(90), at), Some(at));
        let expiry = ts("2026-02-01T00:00:00Z");
        assert_eq!(
            due_at(Policy::Expiry(expiry), Period::days(90), at),
            Some(expiry)
        );
        assert_eq!(
            due_at(Policy::Every("36h".parse().unwrap()), Period::days(90), at),
            Some(ts("2026-01-02T12:00:00Z"))
        );
    }

    #[test]
    fn day_boundaries_and_calendar_windows() {
        // Due at midnight: overdue from that instant, due-soon the whole day before.
        let due = ts("2026-03-10T00:00:00Z");
        let window = Period::days(14);
        assert_eq!(
            status(Some(due), ts("2026-03-10T00:00:00Z"), window),
            Status::Overdue
        );
        assert_eq!(
            status(Some(due), ts("2026-03-10T23:59:59Z"), window),
            Status::Overdue
        );
        assert_eq!(
            status(Some(due), ts("2026-03-09T00:00:00Z"), window),
            Status::DueSoon
        );
        // A month-long window starts a calendar month before (February is short).
        let window: Period = "1mo".parse().unwrap();
        assert_eq!(
            status(Some(due), ts("2026-02-10T00:00:00Z"), window),
            Status::DueSoon
        );
        assert_eq!(
            status(Some(due), ts("2026-02-09T23:59:59Z"), window),
            Status::Ok
        );
        // An hour-long window.
        let window: Period = "36h".parse().unwrap();
        assert_eq!(
            status(Some(due), ts("2026-03-08T12:00:00Z"), window),
            Status::DueSoon
        );
        assert_eq!(
            status(Some(due), ts("2026-03-08T11:59:59Z"), window),
            Status::Ok
        );
        // A period that ends at the window edge from its rotation date.
        let rotated = ts("2026-01-01T00:00:00Z");
        let due = due_at(Policy::Default, Period::days(90), rotated);
        assert_eq!(
            status(due, ts("2026-03-18T00:00:00Z"), Period::days(14)),
            Status::DueSoon
        );
        assert_eq!(
            status(due, ts("2026-03-17T23:59:59Z"), Period::days(14)),
            Status::Ok
        );
    }
}

/// No input makes the duration and date parsers, or the arithmetic on what they accept,
/// panic (issue 14: `19999y` did).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn check(period: Period) {
        for at in [Timestamp::MIN, Timestamp::UNIX_EPOCH, now(), Timestamp::MAX] {
            let due = period.after(at);
            let _ = period.before(at);
            let _ = due_at(Policy::Every(period), period, at);
            let _ = status(due, at, period);
            let _ = status(Some(at), Timestamp::MAX, period);
            let _ = status(Some(Timestamp::MAX), at, period);
        }
    }

    proptest! {
        #[test]
        fn any_text_as_a_period(text in "\\PC{0,24}") {
            if let Ok(period) = text.parse::<Period>() {
                check(period);
                prop_assert_eq!(period.to_string().parse::<Period>().ok(), Some(period));
            }
        }

        #[test]
        fn any_number_and_unit(amount in 0u64..5_000_000_000, unit in "(h|d|w|mo|y)") {
            if let Ok(period) = format!("{amount}{unit}").parse::<Period>() {
                check(period);
            }
        }

        #[test]
        fn any_text_as_a_date(text in "\\PC{0,40}") {
            if let Ok(at) = parse_date(&text) {
                check(Period::days(1));
                let _ = status(Some(at), now(), Period::days(14));
            }
        }

        #[test]
        fn date_shaped_text(year in -100_000i64..100_000, month in 0u8..15, day in 0u8..40, rest in "(|T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2}))") {
            let text = format!("{year:04}-{month:02}-{day:02}{rest}");
            if let Ok(at) = parse_date(&text) {
                let _ = status(Some(at), now(), Period::days(14));
                let _ = due_at(Policy::Default, Period::days(90), at);
            }
        }
    }
}
