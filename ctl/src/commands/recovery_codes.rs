//! `mfactl recovery-codes`: new recovery codes for the caller's own account, for a current
//! code from the app. The old ones stop working at once.

use zeroize::Zeroizing;

use crate::connect::connect_user;
use crate::failure::Failure;
use crate::prompt::read_code;
use crate::report::Report;

#[derive(serde::Serialize)]
pub struct Renewed {
    pub user: String,
    /// Shown once: mfad keeps only their hashes.
    pub recovery_codes: Vec<Zeroizing<String>>,
}

pub async fn run(bus: Option<&str>) -> Result<Renewed, Failure> {
    let own = connect_user(bus).await?;
    let user = own.status().await?.user;
    let Some(code) = read_code("Code shown by the app: ")? else {
        return Err(Failure::input(
            "no code given: the recovery codes are unchanged",
        ));
    };
    let codes = own
        .renew_recovery_codes(&code)
        .await
        .map_err(|error| Failure::from(error).and("; the recovery codes are unchanged"))?;
    Ok(Renewed {
        user,
        recovery_codes: codes.into_iter().map(Zeroizing::new).collect(),
    })
}

impl Report for Renewed {
    fn text(&self) -> String {
        format!(
            "{}: new recovery codes; the old ones no longer work{}",
            self.user,
            super::enroll::recovery_codes_text(&self.recovery_codes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    #[test]
    fn the_new_codes_are_shown_once() {
        let report = Renewed {
            user: "alice".into(),
            recovery_codes: vec![Zeroizing::new("k7pqm-3xd9a-hrt2w".into())],
        };
        assert!(
            report
                .text()
                .starts_with("alice: new recovery codes; the old ones no longer work\n\n")
        );
        assert_eq!(
            json(&report),
            serde_json::json!({ "user": "alice", "recovery_codes": ["k7pqm-3xd9a-hrt2w"] })
        );
    }
}
