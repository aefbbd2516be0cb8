//! RFC 3339 timestamps, the form every timestamp takes on the wire: formatting stored milliseconds as
//! `2026-11-22T13:04:29.123Z` and parsing what clients send, with the civil-from-days algorithm instead of a
//! date crate.

use crate::time::UnixMillis;

const MS_PER_DAY: i64 = 86_400_000;

/// Formats milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format(ms: UnixMillis) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (secs, millis) = (in_day / 1000, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Parses an RFC 3339 timestamp into milliseconds since the epoch.
///
/// Accepts any number of fractional digits (beyond milliseconds they are dropped), `Z` or a `±HH:MM` offset,
/// and, because Python's `datetime.isoformat()` leaves naive datetimes without one, no offset at all (read as
/// UTC). The error says what part is wrong.
pub fn parse(text: &str) -> Result<UnixMillis, String> {
    let mut p = Parser { bytes: text.as_bytes(), pos: 0 };
    let year = p.digits(4, "a four-digit year")?;
    p.expect(b'-')?;
    let month = p.digits(2, "a two-digit month")?;
    p.expect(b'-')?;
    let day = p.digits(2, "a two-digit day")?;
    match p.next() {
        Some(b'T' | b't' | b' ') => {}
        _ => return Err(p.error("`T` between the date and the time")),
    }
    let hour = p.digits(2, "a two-digit hour")?;
    p.expect(b':')?;
    let minute = p.digits(2, "two-digit minutes")?;
    p.expect(b':')?;
    let second = p.digits(2, "two-digit seconds")?;
    let millis = p.fraction_millis();
    let offset_minutes = p.offset()?;
    if p.pos != p.bytes.len() {
        return Err(p.error("the end of the timestamp"));
    }

    if !(1..=12).contains(&month) {
        return Err(format!("month {month} is out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(format!("day {day} does not exist in month {month} of {year}"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("time {hour:02}:{minute:02}:{second:02} is out of range"));
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(secs * 1000 + millis)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<u8> {
        let byte = self.bytes.get(self.pos).copied();
        self.pos += 1;
        byte
    }

    fn error(&self, expected: &str) -> String {
        format!("expected {expected} at character {} (use e.g. 2026-11-22T13:04:29Z)", self.pos)
    }

    fn expect(&mut self, wanted: u8) -> Result<(), String> {
        if self.bytes.get(self.pos) == Some(&wanted) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("`{}`", wanted as char)))
        }
    }

    fn digits(&mut self, count: usize, what: &str) -> Result<i64, String> {
        let field = self.bytes.get(self.pos..self.pos + count).filter(|f| f.iter().all(u8::is_ascii_digit));
        let Some(field) = field else {
            return Err(self.error(what));
        };
        self.pos += count;
        Ok(field.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
    }

    /// An optional `.123456` fraction, truncated to milliseconds.
    fn fraction_millis(&mut self) -> i64 {
        if self.bytes.get(self.pos) != Some(&b'.') {
            return 0;
        }
        self.pos += 1;
        let mut millis = 0;
        let mut seen = 0;
        while let Some(d) = self.bytes.get(self.pos).filter(|b| b.is_ascii_digit()) {
            if seen < 3 {
                millis = millis * 10 + i64::from(d - b'0');
            }
            seen += 1;
            self.pos += 1;
        }
        for _ in seen..3 {
            millis *= 10;
        }
        millis
    }

    /// The UTC offset in minutes: `Z`, `±HH:MM`, `±HHMM`, or nothing (UTC).
    fn offset(&mut self) -> Result<i64, String> {
        let sign = match self.bytes.get(self.pos) {
            None => return Ok(0),
            Some(b'Z' | b'z') => {
                self.pos += 1;
                return Ok(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            Some(_) => return Err(self.error("`Z` or an offset like `+00:00`")),
        };
        self.pos += 1;
        let hours = self.digits(2, "a two-digit offset hour")?;
        if self.bytes.get(self.pos) == Some(&b':') {
            self.pos += 1;
        }
        let minutes = self.digits(2, "two-digit offset minutes")?;
        if hours > 23 || minutes > 59 {
            return Err(format!("offset {hours:02}:{minutes:02} is out of range"));
        }
        Ok(sign * (hours * 60 + minutes))
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12; // March = 0, so the leap day ends the year.
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_format(ms: UnixMillis, expected: &str) {
        assert_eq!(format(ms), expected, "format({ms})");
    }

    fn check_parse(text: &str, expected: Result<UnixMillis, ()>) {
        assert_eq!(parse(text).map_err(|_| ()), expected, "parse({text:?}) = {:?}", parse(text));
    }

    #[test]
    fn formats_rfc3339_with_milliseconds() {
        check_format(0, "1970-01-01T00:00:00.000Z");
        check_format(1_614_265_330_000, "2021-02-25T15:02:10.000Z");
        check_format(1_795_352_669_123, "2026-11-22T13:04:29.123Z");
        check_format(951_782_400_000, "2000-02-29T00:00:00.000Z");
        check_format(-1, "1969-12-31T23:59:59.999Z");
        check_format(253_402_300_799_999, "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_what_clients_send() {
        let t = 1_795_352_669_000;
        check_parse("2026-11-22T13:04:29Z", Ok(t));
        check_parse("2026-11-22T13:04:29.123Z", Ok(t + 123));
        check_parse("2026-11-22T13:04:29.123456Z", Ok(t + 123));
        check_parse("2026-11-22T13:04:29.1Z", Ok(t + 100));
        check_parse("2026-11-22T13:04:29.123456+00:00", Ok(t + 123));
        check_parse("2026-11-22T14:04:29+01:00", Ok(t));
        check_parse("2026-11-22T12:04:29-0100", Ok(t));
        check_parse("2026-11-22t13:04:29z", Ok(t));
        check_parse("2026-11-22T13:04:29", Ok(t));
        check_parse("2000-02-29T00:00:00Z", Ok(951_782_400_000));
        check_parse("1970-01-01T00:00:00Z", Ok(0));
    }

    #[test]
    fn refuses_malformed_timestamps() {
        check_parse("", Err(()));
        check_parse("yesterday", Err(()));
        check_parse("2026-11-22", Err(()));
        check_parse("2026-13-01T00:00:00Z", Err(()));
        check_parse("2026-02-29T00:00:00Z", Err(()));
        check_parse("2026-11-22T24:00:00Z", Err(()));
        check_parse("2026-11-22T13:04:29+25:00", Err(()));
        check_parse("2026-11-22T13:04:29Zjunk", Err(()));
        check_parse("2026-11-22T13:04:29 00:00", Err(()));
    }

    #[test]
    fn format_and_parse_round_trip() {
        for ms in [0, 1, 999, 86_399_999, 1_795_352_669_123, 4_102_444_800_000, -86_400_000] {
            assert_eq!(parse(&format(ms)), Ok(ms), "{ms}");
        }
    }
}
