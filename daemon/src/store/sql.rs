//! What a backend gives the store's operations: transactions that run SQL written once for
//! every backend, with values and rows of a few plain kinds.
//!
//! The operations (in `store::operations`) are written against [`Tx`] in one dialect:
//! parameters are `$1`, `$2`, … (SQLite takes each as a named parameter), booleans
//! are `TRUE`/`FALSE` and bare columns, names are compared through `lower()`, and a row made by
//! an insert is read with `RETURNING`. SQLite and PostgreSQL both take that text as it is.

use std::fmt;

use super::{Result, StoreError};

/// A parameter of a statement.
#[derive(Clone, Copy)]
pub enum Value<'a> {
    Int(i64),
    Bool(bool),
    Text(&'a str),
    Bytes(&'a [u8]),
    /// A text that may be absent (NULL).
    OptText(Option<&'a str>),
    /// An integer that may be absent (NULL).
    OptInt(Option<i64>),
}

impl fmt::Debug for Value<'_> {
    /// Never the bytes: they may be a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(value) => write!(f, "{value}"),
            Value::Bool(value) => write!(f, "{value}"),
            Value::Text(text) => write!(f, "{text:?}"),
            Value::Bytes(bytes) => write!(f, "<{} bytes>", bytes.len()),
            Value::OptText(text) => write!(f, "{text:?}"),
            Value::OptInt(value) => write!(f, "{value:?}"),
        }
    }
}

impl From<i64> for Value<'_> {
    fn from(value: i64) -> Self {
        Value::Int(value)
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(value: Option<i64>) -> Self {
        Value::OptInt(value)
    }
}

impl From<u32> for Value<'_> {
    fn from(value: u32) -> Self {
        Value::Int(value.into())
    }
}

impl From<bool> for Value<'_> {
    fn from(value: bool) -> Self {
        Value::Bool(value)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(text: &'a str) -> Self {
        Value::Text(text)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Value::Bytes(bytes)
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(text: Option<&'a str>) -> Self {
        Value::OptText(text)
    }
}

/// Statement parameters: `values![user.as_str(), now]`.
macro_rules! values {
    ($($value:expr),* $(,)?) => {
        &[$($crate::store::sql::Value::from($value)),*]
    };
}
pub(crate) use values;

/// One column of a row read: what both backends can give.
#[derive(Clone, PartialEq, Eq)]
pub enum Field {
    Null,
    /// Integers and booleans (0 or 1).
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// A row read, its columns in the order the statement names them.
pub struct Row(pub Vec<Field>);

impl Row {
    fn field(&mut self, index: usize) -> Result<Field> {
        self.0
            .get_mut(index)
            .map(|field| std::mem::replace(field, Field::Null))
            .ok_or_else(|| StoreError::Damaged(format!("a row has no column {index}")))
    }

    fn wrong(index: usize, wanted: &str) -> StoreError {
        StoreError::Damaged(format!("column {index} of a stored row is not {wanted}"))
    }

    pub fn opt_int(&mut self, index: usize) -> Result<Option<i64>> {
        match self.field(index)? {
            Field::Null => Ok(None),
            Field::Int(value) => Ok(Some(value)),
            _ => Err(Self::wrong(index, "an integer")),
        }
    }

    pub fn int(&mut self, index: usize) -> Result<i64> {
        self.opt_int(index)?
            .ok_or_else(|| Self::wrong(index, "an integer"))
    }

    /// An integer that must fit a `u32` (digits, period).
    pub fn small(&mut self, index: usize) -> Result<u32> {
        let value = self.int(index)?;
        u32::try_from(value)
            .map_err(|_| StoreError::Damaged(format!("stored value {value} is out of range")))
    }

    pub fn opt_bool(&mut self, index: usize) -> Result<Option<bool>> {
        Ok(self.opt_int(index)?.map(|value| value != 0))
    }

    pub fn bool(&mut self, index: usize) -> Result<bool> {
        self.opt_bool(index)?
            .ok_or_else(|| Self::wrong(index, "a boolean"))
    }

    pub fn opt_text(&mut self, index: usize) -> Result<Option<String>> {
        match self.field(index)? {
            Field::Null => Ok(None),
            Field::Text(text) => Ok(Some(text)),
            _ => Err(Self::wrong(index, "text")),
        }
    }

    pub fn text(&mut self, index: usize) -> Result<String> {
        self.opt_text(index)?
            .ok_or_else(|| Self::wrong(index, "text"))
    }

    /// Bytes, taken out of the row (a secret is not left behind in it).
    pub fn bytes(&mut self, index: usize) -> Result<Vec<u8>> {
        match self.field(index)? {
            Field::Bytes(bytes) => Ok(bytes),
            _ => Err(Self::wrong(index, "bytes")),
        }
    }
}

/// Statements in one transaction of a backend (or, for reads, on its connection).
pub trait Tx {
    /// Runs a statement; returns how many rows it changed.
    fn execute(&self, sql: &str, values: &[Value<'_>]) -> Result<u64>;

    /// Runs a query; returns its rows.
    fn query(&self, sql: &str, values: &[Value<'_>]) -> Result<Vec<Row>>;

    /// Waits for, then holds until the transaction ends, the locks of these users' rows, so
    /// that changes about one user take their turns wherever they are made. (A backend whose
    /// changes all take turns already does nothing.)
    fn lock_users(&self, users: &[&str]) -> Result<()>;

    /// Says that this transaction deletes or overwrites a secret: a backend that keeps copies
    /// of old pages (a write-ahead log) removes them once the transaction is committed.
    fn secret_removed(&self) {}

    /// The query's only row, if any.
    fn query_opt(&self, sql: &str, values: &[Value<'_>]) -> Result<Option<Row>> {
        let mut rows = self.query(sql, values)?;
        match rows.len() {
            0 | 1 => Ok(rows.pop()),
            more => Err(StoreError::Failed(format!(
                "a query meant to find one row found {more}"
            ))),
        }
    }

    /// The query's only row.
    fn query_one(&self, sql: &str, values: &[Value<'_>]) -> Result<Row> {
        self.query_opt(sql, values)?
            .ok_or_else(|| StoreError::Failed("a query meant to find one row found none".into()))
    }
}

/// How long a transaction may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A login's or a command's: the store's time limit.
    Call,
    /// Work long by nature (an import of many users).
    Long,
}

/// Which readers a read queues with. Logins read on a lane of their own, so that a listing
/// (an audit page, every user), which any user may ask for and which reads many rows, never
/// holds up a login's read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// What logins and short lookups read: a few rows, by key.
    Login,
    /// Listings: the audit trail, the list of users.
    Listing,
}

/// What differs between databases: how a transaction runs. Everything else is written once,
/// in `store::operations`.
pub trait Backend: Send + Sync {
    /// Runs `work` in one write transaction and, when it returns true, commits it and returns
    /// once the change is durable; when it returns false or fails, nothing of it stays.
    fn write(&self, bound: Bound, work: &mut dyn FnMut(&dyn Tx) -> Result<bool>) -> Result<()>;

    /// Runs `work`, which only reads, on what is committed, among the readers of `lane`.
    fn read(&self, lane: Lane, work: &mut dyn FnMut(&dyn Tx) -> Result<()>) -> Result<()>;

    /// Called before a read that found nothing is trusted: a backend that is still checking
    /// its files for damage (which could hide rows) waits for the check here.
    fn trust_absence(&self) -> Result<()> {
        Ok(())
    }

    /// Where the state is kept, for administrators: the file, or the database's hosts and
    /// name (never a password).
    fn describe(&self) -> String;

    /// The database server the newest connection reached; none for a file.
    fn server(&self) -> Option<Server> {
        None
    }
}

/// A database server a backend is connected to ([`Backend::server`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its address and port as the server itself reports them (`10.0.0.2:5432`), or the
    /// socket's directory for a local one.
    pub address: String,
    /// Unix time of the first connection to it since another server was used (or none).
    pub since: i64,
}

/// `$1, $2, …` placeholders for `rows` rows of `columns` values each, numbered from `first`:
/// `($1, $2), ($3, $4)`.
pub fn placeholders(rows: usize, columns: usize, first: usize) -> String {
    let mut text = String::new();
    for row in 0..rows {
        if row > 0 {
            text.push_str(", ");
        }
        text.push('(');
        for column in 0..columns {
            if column > 0 {
                text.push_str(", ");
            }
            text.push_str(&format!("${}", first + row * columns + column));
        }
        text.push(')');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(placeholders(2, 2, 1), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(1, 3, 4), "($4, $5, $6)");
    }

    #[test]
    fn bytes_never_show_in_debug() {
        let secret = Value::Bytes(b"12345678901234567890");
        assert_eq!(format!("{secret:?}"), "<20 bytes>");
    }

    #[test]
    fn a_row_gives_each_column_once_and_names_a_wrong_kind() {
        let mut row = Row(vec![Field::Int(1), Field::Bytes(vec![7]), Field::Null]);
        assert!(row.bool(0).unwrap());
        assert_eq!(row.bytes(1).unwrap(), vec![7]);
        assert_eq!(row.opt_text(2).unwrap(), None);
        assert!(row.text(2).unwrap_err().to_string().contains("column 2"));
    }
}
