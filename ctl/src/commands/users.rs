//! `mfactl users`: everyone with an enrollment or an enforcement setting.

use super::status::Status;
use crate::connect::connect;
use crate::failure::Failure;
use crate::report::{Report, yes_no};

/// A table as text, an array of [`Status`] documents in JSON.
#[derive(serde::Serialize)]
pub struct Users(pub Vec<Status>);

pub async fn run(bus: Option<&str>) -> Result<Users, Failure> {
    let admin = connect(bus).await?;
    let users = admin.users().await?;
    Ok(Users(users.into_iter().map(Status::from).collect()))
}

impl Report for Users {
    fn text(&self) -> String {
        let users = &self.0;
        if users.is_empty() {
            return "no user is enrolled or enforced".into();
        }
        let width = users.iter().map(|u| u.user.len()).max().unwrap_or(0).max(4);
        let mut lines = vec![format!(
            "{:width$}  {:8}  {:5}  {:8}  LAST USE",
            "USER", "ENROLLED", "TOKEN", "ENFORCED"
        )];
        for status in users {
            lines.push(format!(
                "{:width$}  {:8}  {:5}  {:8}  {}",
                status.user,
                yes_no(status.enrolled),
                status.token.as_deref().unwrap_or("-"),
                yes_no(status.enforced),
                status.last_used
            ));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    #[test]
    fn nobody_is_said_in_words_and_an_empty_list() {
        assert_eq!(Users(vec![]).text(), "no user is enrolled or enforced");
        assert_eq!(json(&Users(vec![])), serde_json::json!([]));
    }

    #[test]
    fn each_user_is_a_line_and_a_status_document() {
        let report = Users(vec![crate::commands::status::tests::alice()]);
        assert_eq!(
            report.text(),
            "USER   ENROLLED  TOKEN  ENFORCED  LAST USE\nalice  yes       totp   yes       never"
        );
        assert_eq!(
            json(&report),
            serde_json::json!([crate::commands::status::tests::alice_json()])
        );
    }
}
