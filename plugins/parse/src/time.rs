//! Timestamps of log lines → milliseconds since the Unix epoch, parsed by
//! hand: this runs once per line on the hot path.

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Digits `b[at..at+n]` as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(at..at + n)? {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// `Jan` … `Dec` → 1 … 12.
pub fn month(b: &[u8]) -> Option<u32> {
    Some(match b {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

fn epoch_ms(year: i64, mon: u32, day: u32, h: u32, m: u32, s: u32, ms: u32) -> Option<i64> {
    // Leap seconds (60) are accepted and land on the next second.
    if !(1..=12).contains(&mon) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(year, mon, day) * 86_400
        + i64::from(h) * 3600
        + i64::from(m) * 60
        + i64::from(s);
    Some(secs * 1000 + i64::from(ms))
}

/// `+hhmm` (`colon` false) or `+hh:mm` / `Z` (`colon` true) → seconds east
/// of UTC, and the bytes it took.
fn offset(b: &[u8], colon: bool) -> Option<(i64, usize)> {
    match *b.first()? {
        b'Z' | b'z' if colon => Some((0, 1)),
        sign @ (b'+' | b'-') => {
            let h = digits(b, 1, 2)?;
            let (m, len) = if colon {
                (b.get(3).filter(|c| **c == b':').and(digits(b, 4, 2))?, 6)
            } else {
                (digits(b, 3, 2)?, 5)
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            Some((if sign == b'-' { -secs } else { secs }, len))
        }
        _ => None,
    }
}

/// Common log format: `10/Oct/2000:13:55:36 -0700`.
pub fn clf(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    if b[14] != b':' || b[17] != b':' {
        return None;
    }
    let day = digits(b, 0, 2)?;
    let mon = month(&b[3..6])?;
    let year = digits(b, 7, 4)?;
    let ms = epoch_ms(
        i64::from(year),
        mon,
        day,
        digits(b, 12, 2)?,
        digits(b, 15, 2)?,
        digits(b, 18, 2)?,
        0,
    )?;
    let (off, _) = offset(&b[21..], false)?;
    Some(ms - off * 1000)
}

/// RFC 3339 (RFC 5424's timestamp): `2003-10-11T22:14:15.003Z`,
/// `2003-08-24T05:14:15.000003-07:00`. Fractions past milliseconds are cut.
pub fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut at = 19;
    let mut frac_ms = 0;
    if b[at] == b'.' {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            if at - start < 3 {
                frac_ms = frac_ms * 10 + u32::from(b[at] - b'0');
            }
            at += 1;
        }
        match at - start {
            0 => return None,
            1 => frac_ms *= 100,
            2 => frac_ms *= 10,
            _ => {}
        }
    }
    let (off, len) = offset(&b[at..], true)?;
    if at + len != b.len() {
        return None;
    }
    let ms = epoch_ms(
        i64::from(digits(b, 0, 4)?),
        digits(b, 5, 2)?,
        digits(b, 8, 2)?,
        digits(b, 11, 2)?,
        digits(b, 14, 2)?,
        digits(b, 17, 2)?,
        frac_ms,
    )?;
    Some(ms - off * 1000)
}

/// RFC 3164: `Oct 11 22:14:15` or `Oct  1 22:14:15` (no year, no zone: UTC,
/// in the year that puts it at most a day ahead of `now_ms`).
pub fn rfc3164(s: &str, now_ms: i64) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 15 || b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    let mon = month(&b[0..3])?;
    let day = if b[4] == b' ' {
        digits(b, 5, 1)?
    } else {
        digits(b, 4, 2)?
    };
    let (h, m, sec) = (digits(b, 7, 2)?, digits(b, 10, 2)?, digits(b, 13, 2)?);
    let year = year_of(now_ms);
    let this_year = epoch_ms(year, mon, day, h, m, sec, 0)?;
    if this_year > now_ms + 86_400_000 {
        // December's lines read in January.
        epoch_ms(year - 1, mon, day, h, m, sec, 0)
    } else {
        Some(this_year)
    }
}

/// The UTC year of an epoch-milliseconds instant.
fn year_of(ms: i64) -> i64 {
    let days = ms.div_euclid(86_400_000);
    // civil_from_days, year only.
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_with_offsets() {
        // date -d '2000-10-10T13:55:36-07:00' +%s → 971211336
        assert_eq!(clf("10/Oct/2000:13:55:36 -0700"), Some(971_211_336_000));
        assert_eq!(clf("01/Jan/1970:00:00:00 +0000"), Some(0));
        assert_eq!(clf("29/Feb/2024:23:59:59 +0100"), Some(1_709_247_599_000));
        assert_eq!(clf("10/Foo/2000:13:55:36 -0700"), None);
        assert_eq!(clf("10/Oct/2000:25:55:36 -0700"), None);
        assert_eq!(clf("10/Oct/2000:13:55:36"), None);
    }

    #[test]
    fn rfc3339_fractions_and_zones() {
        assert_eq!(rfc3339("2003-10-11T22:14:15.003Z"), Some(1_065_910_455_003));
        assert_eq!(
            rfc3339("2003-08-24T05:14:15.000003-07:00"),
            Some(1_061_727_255_000)
        );
        assert_eq!(
            rfc3339("2003-10-11T22:14:15.5+00:00"),
            Some(1_065_910_455_500)
        );
        assert_eq!(rfc3339("2003-10-11T22:14:15"), None);
        assert_eq!(rfc3339("2003-10-11T22:14:15.Z"), None);
        assert_eq!(rfc3339("2003-10-11T22:14:15Zjunk"), None);
    }

    #[test]
    fn rfc3164_picks_the_year() {
        let jan_2 = rfc3339("2025-01-02T00:00:00Z").unwrap();
        assert_eq!(
            rfc3164("Dec 31 23:00:00", jan_2),
            rfc3339("2024-12-31T23:00:00Z")
        );
        assert_eq!(
            rfc3164("Jan  1 10:00:00", jan_2),
            rfc3339("2025-01-01T10:00:00Z")
        );
        assert_eq!(rfc3164("Jan 1 10:00:00", jan_2), None);
    }

    #[test]
    fn year_of_matches_days_from_civil() {
        for year in [1970, 1999, 2000, 2024, 2100] {
            for (m, d) in [(1, 1), (2, 29), (12, 31)] {
                let ms = days_from_civil(year, m, d) * 86_400_000 + 1;
                assert_eq!(year_of(ms), year, "{year}-{m}-{d}");
            }
        }
    }
}
