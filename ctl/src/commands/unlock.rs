//! `mfactl unlock USER`: end a lock after too many wrong codes, and clear the count of tries.

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::Report;

#[derive(serde::Serialize)]
pub struct Unlock {
    pub user: String,
    pub was_locked: bool,
}

pub async fn run(bus: Option<&str>, user: &str) -> Result<Unlock, Failure> {
    let was_locked = connect(bus).await?.unlock(user).await?;
    Ok(Unlock {
        user: user.to_owned(),
        was_locked,
    })
}

impl Report for Unlock {
    fn text(&self) -> String {
        if self.was_locked {
            format!(
                "{}: unlocked; the next login asks for a code again",
                self.user
            )
        } else {
            format!(
                "{}: was not locked; the count of wrong codes is cleared",
                self.user
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    #[test]
    fn an_unlock_says_whether_there_was_a_lock() {
        let report = Unlock {
            user: "alice".into(),
            was_locked: true,
        };
        assert_eq!(
            report.text(),
            "alice: unlocked; the next login asks for a code again"
        );
        assert_eq!(
            json(&report),
            serde_json::json!({ "user": "alice", "was_locked": true })
        );
    }
}
