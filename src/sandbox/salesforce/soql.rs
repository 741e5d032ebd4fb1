//! The query resource: `query` and `queryAll` over SignupRequest in a SOQL subset (parsed,
//! then evaluated against each sign-up as it reads now: filters, `ORDER BY`, `LIMIT`,
//! `COUNT()`), and paging by query locator (`nextRecordsUrl`) at the configured batch size.

use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use super::signup::canonical;
use super::{Emulator, Reply, soql_datetime};

/// How long a query locator lives without being used.
const CURSOR_TTL_MS: u64 = 15 * 60 * 1000;

/// The rows of a query, served page by page through its locator: which sign-ups, in order, and
/// each rendered for its page as it read when the query ran (its time, and whether it was
/// deleted then: the one thing about a sign-up that changes), so that a query of every sign-up
/// costs a page of rendering per page rather than all of them up front, and holds positions.
#[derive(Debug)]
pub(super) struct Cursor {
    /// Positions in `signups`, each with whether it was deleted when the query ran.
    rows: Vec<(usize, bool)>,
    fields: Vec<&'static str>,
    /// When the query ran: every page renders the sign-ups as of then.
    ran_ms: u64,
    batch: usize,
    version: String,
    last_used_ms: u64,
}

impl Emulator<'_> {
    // ---- SOQL ----

    pub(super) fn query(
        &mut self,
        soql: &str,
        include_deleted: bool,
        version: &str,
        batch: usize,
        now_ms: u64,
    ) -> Reply {
        if soql.trim().is_empty() {
            return Reply::error(
                400,
                "MALFORMED_QUERY",
                "SOQL statements cannot be empty or null",
                &[],
            );
        }
        let query = match parse_soql(soql, version) {
            Ok(q) => q,
            Err(reply) => return reply,
        };
        // Only the sign-ups the condition may match are looked at, and of those only the fields
        // a condition or an order compares are rendered to decide (rendering is what costs).
        let signups = &self.data.signups;
        let candidates: Box<dyn Iterator<Item = (usize, &super::Signup)>> = match query
            .filter
            .as_ref()
            .and_then(|c| c.candidates(&self.data.index))
        {
            Some(positions) => Box::new(
                positions
                    .into_iter()
                    .filter_map(|p| signups.get(p).map(|s| (p, s))),
            ),
            None => Box::new(signups.iter().enumerate()),
        };
        let candidates = candidates
            .filter(|(_, s)| include_deleted || !s.deleted)
            .filter(|(_, s)| {
                query.filter.as_ref().is_none_or(|c| {
                    let reading = self.reading(s, now_ms);
                    c.matches(&|field| reading.field(field))
                })
            });
        let mut rows: Vec<(usize, bool)> = match query.order_by {
            None => candidates.map(|(p, s)| (p, s.deleted)).collect(),
            Some((field, descending)) => {
                let mut keyed: Vec<(usize, bool, Value)> = candidates
                    .map(|(p, s)| (p, s.deleted, self.reading(s, now_ms).field(field)))
                    .collect();
                keyed.sort_by(|(_, _, a), (_, _, b)| {
                    let ord = compare(a, b);
                    if descending { ord.reverse() } else { ord }
                });
                keyed
                    .into_iter()
                    .map(|(p, deleted, _)| (p, deleted))
                    .collect()
            }
        };
        if let Some(limit) = query.limit {
            rows.truncate(limit);
        }
        let total = rows.len();
        let Some(fields) = query.fields else {
            // COUNT()
            return Reply::json(
                200,
                json!({ "totalSize": total, "done": true, "records": [] }),
            );
        };
        self.data
            .cursors
            .retain(|_, c| now_ms.saturating_sub(c.last_used_ms) < CURSOR_TTL_MS);
        let cursor = Cursor {
            rows,
            fields,
            ran_ms: now_ms,
            batch,
            version: version.to_string(),
            last_used_ms: now_ms,
        };
        if total <= batch {
            return self.page(&cursor, 0, None);
        }
        let locator = format!("01gSB{}", self.random_text(13));
        let next = format!("/services/data/v{version}/query/{locator}-{batch}");
        let reply = self.page(&cursor, 0, Some(&next));
        self.data.cursors.insert(locator, cursor);
        reply
    }

    pub(super) fn query_more(&mut self, locator: &str, now_ms: u64) -> Reply {
        let invalid = || Reply::error(400, "INVALID_QUERY_LOCATOR", "invalid query locator", &[]);
        let Some((id, offset)) = locator.rsplit_once('-') else {
            return invalid();
        };
        let Ok(offset) = offset.parse::<usize>() else {
            return invalid();
        };
        let Some(cursor) = self.data.cursors.remove(id) else {
            return invalid();
        };
        if now_ms.saturating_sub(cursor.last_used_ms) >= CURSOR_TTL_MS || offset > cursor.rows.len()
        {
            return invalid();
        }
        let end = (offset + cursor.batch).min(cursor.rows.len());
        if end == cursor.rows.len() {
            return self.page(&cursor, offset, None);
        }
        let next = format!("/services/data/v{}/query/{id}-{end}", cursor.version);
        let reply = self.page(&cursor, offset, Some(&next));
        self.data.cursors.insert(
            id.to_string(),
            Cursor {
                last_used_ms: now_ms,
                ..cursor
            },
        );
        reply
    }

    /// The answer of one page of `cursor` from `offset`, one batch, each sign-up rendered as it
    /// read when the query ran, its selected fields alone: `{totalSize, done, [nextRecordsUrl,]
    /// records}`, in the order Salesforce's own example answer has them (the head before the
    /// records, on every page), written as JSON text record by record, since a page of 2,000
    /// built as a tree first was most of what a page cost.
    fn page(&self, cursor: &Cursor, offset: usize, next: Option<&str>) -> Reply {
        let end = (offset + cursor.batch).min(cursor.rows.len());
        let rows = &cursor.rows[offset.min(end)..end];
        let mut out = Vec::with_capacity(64 + rows.len() * 1024);
        out.extend_from_slice(b"{\"totalSize\":");
        out.extend_from_slice(cursor.rows.len().to_string().as_bytes());
        out.extend_from_slice(if next.is_none() {
            b",\"done\":true"
        } else {
            b",\"done\":false"
        });
        let next_records_url = |out: &mut Vec<u8>, url: &str| {
            out.extend_from_slice(b",\"nextRecordsUrl\":");
            write_json(out, &url);
        };
        if let Some(url) = next {
            next_records_url(&mut out, url);
        }
        out.extend_from_slice(b",\"records\":[");
        let mut first = true;
        for (p, deleted) in rows {
            let Some(signup) = self.data.signups.get(*p) else {
                continue;
            };
            if !first {
                out.push(b',');
            }
            first = false;
            let reading = self.reading(signup, cursor.ran_ms);
            out.extend_from_slice(b"{\"attributes\":{\"type\":\"SignupRequest\",\"url\":");
            write_json(
                &mut out,
                &format!(
                    "/services/data/v{}/sobjects/SignupRequest/{}",
                    cursor.version, signup.id
                ),
            );
            out.push(b'}');
            for (i, f) in cursor.fields.iter().enumerate() {
                // A field selected twice is answered once, as a tree's key is.
                if cursor.fields[..i].contains(f) {
                    continue;
                }
                out.push(b',');
                write_json(&mut out, f);
                out.push(b':');
                let value = match *f {
                    // Whether it was deleted when the query ran.
                    "IsDeleted" => json!(deleted),
                    f => reading.field(f),
                };
                write_json(&mut out, &value);
            }
            out.push(b'}');
        }
        out.push(b']');
        out.push(b'}');
        Reply::written(200, out)
    }
}

/// `value` as compact JSON text onto `out`.
fn write_json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    // Writing to a Vec fails only for a value serde_json cannot write (a map with non-string
    // keys), which these are not.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// The page size: `Sforce-Query-Options: batchSize=N` (200 to 2000, as Salesforce allows) when
/// it is smaller than the configured one.
pub(super) fn batch_size(options: Option<&str>, configured: usize) -> usize {
    let asked = options.and_then(|o| {
        o.split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
    });
    let configured = configured.max(1);
    asked.map_or(configured, |a| a.clamp(200, 2000).min(configured))
}

struct Query {
    /// `None` for `COUNT()`.
    fields: Option<Vec<&'static str>>,
    filter: Option<Condition>,
    order_by: Option<(&'static str, bool)>,
    limit: Option<usize>,
}

enum Condition {
    Compare {
        field: &'static str,
        op: Op,
        value: Value,
    },
    In {
        field: &'static str,
        values: Vec<Value>,
        negated: bool,
    },
    Like {
        field: &'static str,
        pattern: String,
    },
    All(Vec<Condition>),
    Any(Vec<Condition>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Condition {
    /// The positions of the sign-ups this condition may match, in order, when the index can
    /// tell (an `Id` or `Username` equal to text, or in a list of texts): a superset, each
    /// still checked by [`Condition::matches`].
    fn candidates(&self, index: &super::index::Index) -> Option<Vec<usize>> {
        match self {
            Condition::Compare {
                field,
                op: Op::Eq,
                value: Value::String(value),
            } => index.with_field(field, value),
            Condition::In {
                field,
                values,
                negated: false,
            } => {
                let mut found = Vec::new();
                for value in values {
                    found.extend(index.with_field(field, value.as_str()?)?);
                }
                found.sort_unstable();
                found.dedup();
                Some(found)
            }
            Condition::All(all) => all.iter().find_map(|c| c.candidates(index)),
            _ => None,
        }
    }

    /// Whether the sign-up whose fields `row` reads (by canonical name) matches.
    fn matches(&self, row: &impl Fn(&'static str) -> Value) -> bool {
        match self {
            Condition::Compare { field, op, value } => {
                let actual = &row(field);
                let ord = compare(actual, value);
                // Ordering against null matches nothing, as in SOQL.
                let comparable = !actual.is_null() && !value.is_null();
                match op {
                    Op::Eq => values_equal(actual, value),
                    Op::Ne => !values_equal(actual, value),
                    Op::Lt => comparable && ord.is_lt(),
                    Op::Le => comparable && ord.is_le(),
                    Op::Gt => comparable && ord.is_gt(),
                    Op::Ge => comparable && ord.is_ge(),
                }
            }
            Condition::In {
                field,
                values,
                negated,
            } => {
                let actual = row(field);
                values.iter().any(|v| values_equal(&actual, v)) != *negated
            }
            Condition::Like { field, pattern } => row(field)
                .as_str()
                .is_some_and(|s| like(&s.to_lowercase(), &pattern.to_lowercase())),
            Condition::All(all) => all.iter().all(|c| c.matches(row)),
            Condition::Any(any) => any.iter().any(|c| c.matches(row)),
        }
    }
}

/// SOQL compares text without case.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        // Compared without allocating: this runs for every record of every query.
        (Value::String(x), Value::String(y)) => x
            .chars()
            .flat_map(char::to_lowercase)
            .eq(y.chars().flat_map(char::to_lowercase)),
        (Value::Number(x), Value::String(y)) | (Value::String(y), Value::Number(x)) => {
            x.to_string() == *y
        }
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        // Nulls first, as SOQL sorts ascending by default.
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => {
            let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_lowercase);
            text(a).cmp(&text(b))
        }
    }
}

/// `%` any run, `_` one character.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(String),
    /// A date-time literal, `2024-06-10T12:00:00Z`, unquoted as SOQL wants it: milliseconds.
    DateTime(u64),
    Comma,
    Open,
    Close,
    Op(Op),
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        })
    }
}

fn malformed(message: impl Into<String>) -> Reply {
    Reply::error(400, "MALFORMED_QUERY", message, &[])
}

fn tokenize(soql: &str) -> Result<Vec<Token>, Reply> {
    let mut tokens = Vec::new();
    let mut chars = soql.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            ',' => {
                chars.next();
                tokens.push(Token::Comma);
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '=' => {
                chars.next();
                tokens.push(Token::Op(Op::Eq));
            }
            '!' | '<' | '>' => {
                chars.next();
                let next_eq = chars.peek() == Some(&'=');
                let next_gt = chars.peek() == Some(&'>');
                let op = match (c, next_eq, next_gt) {
                    ('!', true, _) => Op::Ne,
                    ('<', _, true) => Op::Ne,
                    ('<', true, _) => Op::Le,
                    ('<', false, false) => Op::Lt,
                    ('>', true, _) => Op::Ge,
                    ('>', false, _) => Op::Gt,
                    _ => return Err(malformed(format!("unexpected token: '{c}'"))),
                };
                if next_eq || (c == '<' && next_gt) {
                    chars.next();
                }
                tokens.push(Token::Op(op));
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(malformed("unterminated string literal")),
                        Some('\'') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('r') => s.push('\r'),
                            Some('t') => s.push('\t'),
                            Some('b') => s.push('\u{8}'),
                            Some('f') => s.push('\u{c}'),
                            Some(e @ ('\'' | '"' | '\\' | '%' | '_')) => s.push(e),
                            _ => {
                                return Err(malformed("invalid escape sequence in string literal"));
                            }
                        },
                        Some(other) => s.push(other),
                    }
                }
                tokens.push(Token::Str(s));
            }
            // `YYYY-MM-DD...`: a date-time literal, not a number.
            c if c.is_ascii_digit() && datetime_ahead(chars.clone()) => {
                let mut literal = String::new();
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_alphanumeric() || matches!(d, '-' | ':' | '.' | '+') {
                        literal.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let ms = parse_datetime(&literal)
                    .ok_or_else(|| malformed(format!("invalid date-time literal: {literal}")))?;
                tokens.push(Token::DateTime(ms));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut s = String::new();
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_digit() || d == '.' || (d == '-' && s.is_empty()) {
                        s.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Num(s));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut s = String::new();
                while let Some(&d) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' || d == '.' {
                        s.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(s));
            }
            other => return Err(malformed(format!("unexpected token: '{other}'"))),
        }
    }
    Ok(tokens)
}

/// Whether the characters ahead start like a date: four digits and a hyphen.
fn datetime_ahead(mut chars: impl Iterator<Item = char>) -> bool {
    (0..4).all(|_| chars.next().is_some_and(|c| c.is_ascii_digit())) && chars.next() == Some('-')
}

/// A SOQL date-time literal as milliseconds since the epoch: `YYYY-MM-DDThh:mm:ss[.sss]Z`, or
/// with a `+hh:mm`/`-hh:mm` offset instead of `Z`, as Salesforce's SOQL reference gives them.
fn parse_datetime(literal: &str) -> Option<u64> {
    let (base, offset_secs) = match literal.strip_suffix('Z') {
        Some(base) => (base, 0i64),
        None => {
            let at = literal.len().checked_sub(6)?;
            let (base, offset) = (literal.get(..at)?, literal.get(at..)?);
            let sign = match offset.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = offset.get(1..)?.split_once(':')?;
            (
                base,
                sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
            )
        }
    };
    if base.len() < 19 || base.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let utc = humantime::parse_rfc3339(&format!("{base}Z")).ok()?;
    let ms = i64::try_from(utc.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    u64::try_from(ms - offset_secs * 1000).ok()
}

struct Parser<'v> {
    tokens: Vec<Token>,
    at: usize,
    /// The API version asked for: a field newer than it is unknown.
    version: &'v str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), Reply> {
        if self.keyword(word) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn unexpected(&self) -> Reply {
        match self.peek() {
            Some(Token::Word(w) | Token::Num(w)) => malformed(format!("unexpected token: {w}")),
            Some(Token::Str(s)) => malformed(format!("unexpected token: '{s}'")),
            Some(Token::DateTime(ms)) => {
                malformed(format!("unexpected token: {}", soql_datetime(*ms)))
            }
            Some(Token::Comma) => malformed("unexpected token: ','"),
            Some(Token::Open) => malformed("unexpected token: '('"),
            Some(Token::Close) => malformed("unexpected token: ')'"),
            Some(Token::Op(op)) => malformed(format!("unexpected token: '{op:?}'")),
            None => malformed("unexpected end of query"),
        }
    }

    fn field(&mut self) -> Result<&'static str, Reply> {
        match self.next() {
            Some(Token::Word(w)) => canonical(&w, self.version).ok_or_else(|| {
                Reply::error(
                    400,
                    "INVALID_FIELD",
                    format!("No such column '{w}' on entity 'SignupRequest'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name."),
                    &[],
                )
            }),
            _ => {
                self.at -= 1;
                Err(self.unexpected())
            }
        }
    }

    fn value(&mut self) -> Result<Value, Reply> {
        match self.next() {
            Some(Token::Str(s)) => Ok(json!(s)),
            Some(Token::Num(n)) => n
                .parse::<i64>()
                .map(|i| json!(i))
                .or_else(|_| n.parse::<f64>().map(|f| json!(f)))
                .map_err(|_| malformed(format!("unexpected token: {n}"))),
            Some(Token::DateTime(ms)) => Ok(json!(soql_datetime(ms))),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Value::Null),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(json!(true)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(json!(false)),
            _ => {
                self.at -= 1;
                Err(self.unexpected())
            }
        }
    }

    /// A chain of terms joined by one kind of connective: SOQL refuses `a AND b OR c` without
    /// parentheses.
    fn condition(&mut self) -> Result<Condition, Reply> {
        let mut terms = vec![self.term()?];
        let mut connective: Option<bool> = None; // Some(true) for AND
        loop {
            let and = if self.keyword("AND") {
                true
            } else if self.keyword("OR") {
                false
            } else {
                break;
            };
            if connective.is_some_and(|c| c != and) {
                return Err(malformed(
                    "unexpected token: mixing AND and OR needs parentheses",
                ));
            }
            connective = Some(and);
            terms.push(self.term()?);
        }
        Ok(match (connective, terms.len()) {
            (_, 1) => terms.remove(0),
            (Some(false), _) => Condition::Any(terms),
            _ => Condition::All(terms),
        })
    }

    fn term(&mut self) -> Result<Condition, Reply> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.condition()?;
            if self.next() != Some(Token::Close) {
                self.at -= 1;
                return Err(self.unexpected());
            }
            return Ok(inner);
        }
        let field = self.field()?;
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            if self.next() != Some(Token::Open) {
                self.at -= 1;
                return Err(self.unexpected());
            }
            let mut values = vec![self.value()?];
            loop {
                match self.next() {
                    Some(Token::Comma) => values.push(self.value()?),
                    Some(Token::Close) => break,
                    _ => {
                        self.at -= 1;
                        return Err(self.unexpected());
                    }
                }
            }
            return Ok(Condition::In {
                field,
                values,
                negated,
            });
        }
        if negated {
            return Err(self.unexpected());
        }
        if self.keyword("LIKE") {
            return match self.next() {
                Some(Token::Str(pattern)) => Ok(Condition::Like { field, pattern }),
                _ => {
                    self.at -= 1;
                    Err(self.unexpected())
                }
            };
        }
        match self.next() {
            Some(Token::Op(op)) => {
                // A date-time field takes an unquoted date-time literal (or null); a quoted one
                // is a string, which Salesforce refuses rather than compares as text.
                if field == "CreatedDate" && matches!(self.peek(), Some(Token::Str(_))) {
                    return Err(Reply::error(
                        400,
                        "INVALID_FIELD",
                        "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes",
                        &[],
                    ));
                }
                Ok(Condition::Compare {
                    field,
                    op,
                    value: self.value()?,
                })
            }
            _ => {
                self.at -= 1;
                Err(self.unexpected())
            }
        }
    }
}

fn parse_soql(soql: &str, version: &str) -> Result<Query, Reply> {
    let mut p = Parser {
        tokens: tokenize(soql)?,
        at: 0,
        version,
    };
    p.expect_keyword("SELECT")?;
    let fields = if p.keyword("COUNT") {
        if p.next() != Some(Token::Open) || p.next() != Some(Token::Close) {
            return Err(malformed("COUNT takes no field here: COUNT()"));
        }
        None
    } else {
        let mut fields = vec![p.field()?];
        while p.peek() == Some(&Token::Comma) {
            p.at += 1;
            fields.push(p.field()?);
        }
        Some(fields)
    };
    p.expect_keyword("FROM")?;
    match p.next() {
        Some(Token::Word(object)) if object.eq_ignore_ascii_case("SignupRequest") => {}
        Some(Token::Word(object)) => {
            return Err(Reply::error(
                400,
                "INVALID_TYPE",
                format!(
                    "sObject type '{object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name."
                ),
                &[],
            ));
        }
        _ => {
            p.at -= 1;
            return Err(p.unexpected());
        }
    }
    let filter = if p.keyword("WHERE") {
        Some(p.condition()?)
    } else {
        None
    };
    let order_by = if p.keyword("ORDER") {
        p.expect_keyword("BY")?;
        let field = p.field()?;
        let descending = if p.keyword("DESC") {
            true
        } else {
            p.keyword("ASC");
            false
        };
        Some((field, descending))
    } else {
        None
    };
    let limit = if p.keyword("LIMIT") {
        match p.next() {
            Some(Token::Num(n)) => Some(
                n.parse::<usize>()
                    .map_err(|_| malformed(format!("unexpected token: {n}")))?,
            ),
            _ => {
                p.at -= 1;
                return Err(p.unexpected());
            }
        }
    } else {
        None
    };
    if p.peek().is_some() {
        return Err(p.unexpected());
    }
    Ok(Query {
        fields,
        filter,
        order_by,
        limit,
    })
}
