//! `mfactl health`: where mfad keeps its state, the database server it uses, whether the store
//! answers now, and its last failure. Exits 1 when the store does not answer, for monitoring.

use pam_mfa_api::StoreHealth;

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::{Report, Time};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Health {
    pub store: String,
    /// The database server in use (null for a file, or before any connection).
    pub server: Option<String>,
    pub server_since: Time,
    pub answering: bool,
    pub last_error: Option<String>,
    pub last_error_at: Time,
}

impl From<StoreHealth> for Health {
    fn from(health: StoreHealth) -> Self {
        Health {
            store: health.store,
            server: Some(health.server).filter(|server| !server.is_empty()),
            server_since: Time(health.server_since),
            answering: health.answering,
            last_error: Some(health.last_error).filter(|error| !error.is_empty()),
            last_error_at: Time(health.last_error_at),
        }
    }
}

pub async fn run(bus: Option<&str>) -> Result<Health, Failure> {
    Ok(connect(bus).await?.health().await?.into())
}

impl Report for Health {
    fn text(&self) -> String {
        let mut lines = vec![format!("store:      {}", self.store)];
        if let Some(server) = &self.server {
            lines.push(format!(
                "server:     {server} (accepts writes), in use since {}",
                self.server_since
            ));
        }
        lines.push(if self.answering {
            "answering:  yes".to_owned()
        } else {
            "answering:  no (logins that need the store are denied until it answers)".to_owned()
        });
        if let Some(error) = &self.last_error {
            lines.push(format!("last error: {} ({})", error, self.last_error_at));
        } else {
            lines.push("last error: none since mfad started".to_owned());
        }
        lines.join("\n")
    }

    fn succeeded(&self) -> bool {
        self.answering
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    #[test]
    fn it_names_the_server_in_use_and_the_last_error() {
        let report = Health::from(StoreHealth {
            store: "PostgreSQL db1:5432,db2:5432 database mfa".into(),
            server: "10.0.0.2:5432".into(),
            server_since: 1_800_000_000,
            answering: true,
            last_error: "cannot connect to PostgreSQL db1:5432,db2:5432 database mfa: \
                         connection refused"
                .into(),
            last_error_at: 1_799_999_990,
        });
        assert_eq!(
            report.text(),
            "store:      PostgreSQL db1:5432,db2:5432 database mfa\n\
             server:     10.0.0.2:5432 (accepts writes), in use since 2027-01-15 08:00 UTC\n\
             answering:  yes\n\
             last error: cannot connect to PostgreSQL db1:5432,db2:5432 database mfa: \
             connection refused (2027-01-15 07:59 UTC)"
        );
        assert!(report.succeeded());
        assert_eq!(
            json(&report),
            serde_json::json!({
                "store": "PostgreSQL db1:5432,db2:5432 database mfa",
                "server": "10.0.0.2:5432",
                "server_since": 1_800_000_000,
                "answering": true,
                "last_error": "cannot connect to PostgreSQL db1:5432,db2:5432 database mfa: \
                               connection refused",
                "last_error_at": 1_799_999_990,
            })
        );
    }

    #[test]
    fn a_file_store_that_does_not_answer_fails() {
        let report = Health::from(StoreHealth {
            store: "SQLite /var/lib/pam-mfa/mfad.sqlite3".into(),
            server: String::new(),
            server_since: 0,
            answering: false,
            last_error: String::new(),
            last_error_at: 0,
        });
        assert_eq!(
            report.text(),
            "store:      SQLite /var/lib/pam-mfa/mfad.sqlite3\n\
             answering:  no (logins that need the store are denied until it answers)\n\
             last error: none since mfad started"
        );
        assert!(!report.succeeded());
        assert_eq!(json(&report)["server"], serde_json::Value::Null);
    }
}
