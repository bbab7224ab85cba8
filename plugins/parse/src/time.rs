//! Reading log timestamps into epoch milliseconds, cached: consecutive
//! lines of a log mostly share their second.

/// The last timestamp read, by its text.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    text: Vec<u8>,
    ms: Option<i64>,
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0')))
}

fn month(b: &[u8]) -> Option<i64> {
    MONTHS
        .iter()
        .position(|m| m.as_slice() == b)
        .map(|m| m as i64 + 1)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's
/// `days_from_civil`).
pub(crate) fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn checked(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    ((1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s <= 60)
        .then(|| ((days(y, mo, d) * 24 + h) * 60 + mi) * 60 + s)
}

impl Cache {
    fn cached(&mut self, text: &[u8], read: impl FnOnce(&[u8]) -> Option<i64>) -> Option<i64> {
        if self.text != text {
            self.text.clear();
            self.text.extend_from_slice(text);
            self.ms = read(text);
        }
        self.ms
    }

    /// `10/Oct/2000:13:55:36 -0700`.
    pub fn access_time(&mut self, text: &[u8]) -> Option<i64> {
        self.cached(text, |t| {
            if t.len() != 26 || t[2] != b'/' || t[6] != b'/' || t[11] != b':' || t[20] != b' ' {
                return None;
            }
            let seconds = checked(
                digits(&t[7..11])?,
                month(&t[3..6])?,
                digits(&t[0..2])?,
                digits(&t[12..14])?,
                digits(&t[15..17])?,
                digits(&t[18..20])?,
            )?;
            let sign = match t[21] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let offset = digits(&t[22..24])? * 3600 + digits(&t[24..26])? * 60;
            Some((seconds - sign * offset) * 1000)
        })
    }

    /// RFC 3339 (`2003-10-11T22:14:15.003Z`, `…+02:00`), as RFC 5424 has it.
    pub fn rfc3339(&mut self, text: &[u8]) -> Option<i64> {
        self.cached(text, |t| {
            if t.len() < 20 || t[4] != b'-' || t[7] != b'-' || t[10] != b'T' {
                return None;
            }
            let seconds = checked(
                digits(&t[0..4])?,
                digits(&t[5..7])?,
                digits(&t[8..10])?,
                digits(&t[11..13])?,
                digits(&t[14..16])?,
                digits(&t[17..19])?,
            )?;
            let mut rest = &t[19..];
            let mut ms = 0;
            if rest.first() == Some(&b'.') {
                let n = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
                let frac = &rest[1..1 + n];
                let mut scaled = digits(frac.get(..n.min(3))?)?;
                for _ in n.min(3)..3 {
                    scaled *= 10;
                }
                ms = scaled;
                rest = &rest[1 + n..];
            }
            let offset = match rest {
                b"Z" => 0,
                [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                    let o = digits(&[*h1, *h2])? * 3600 + digits(&[*m1, *m2])? * 60;
                    if *sign == b'+' { o } else { -o }
                }
                _ => return None,
            };
            Some((seconds - offset) * 1000 + ms)
        })
    }
}
