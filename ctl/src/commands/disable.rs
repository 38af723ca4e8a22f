//! `mfactl disable`: remove the caller's own authenticator app and recovery codes, for a
//! current code or a recovery code. Refused while MFA is required of the caller.

use pam_mfa_api::NextLogin;

use crate::connect::connect_user;
use crate::failure::Failure;
use crate::prompt::read_code;
use crate::report::{Report, True};

#[derive(serde::Serialize)]
pub struct Disabled {
    pub user: String,
    pub disabled: True,
    pub next_login: NextLogin,
}

pub async fn run(bus: Option<&str>) -> Result<Disabled, Failure> {
    let own = connect_user(bus).await?;
    let user = own.status().await?.user;
    let Some(code) = read_code("Code shown by the app, or a recovery code: ")? else {
        return Err(Failure::input("no code given: nothing was changed"));
    };
    own.disable(&code)
        .await
        .map_err(|error| Failure::from(error).and("; nothing was changed"))?;
    let next_login = own.status().await?.next_login;
    Ok(Disabled {
        user,
        disabled: True,
        next_login,
    })
}

impl Report for Disabled {
    fn text(&self) -> String {
        format!(
            "{}: authenticator app and recovery codes removed; the next login {}",
            self.user,
            self.next_login.describe()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    #[test]
    fn the_removal_says_what_the_next_login_does() {
        let report = Disabled {
            user: "alice".into(),
            disabled: True,
            next_login: NextLogin::NoSecondFactor,
        };
        assert_eq!(
            report.text(),
            "alice: authenticator app and recovery codes removed; the next login asks for no \
             second factor (MFA is not required)"
        );
        assert_eq!(
            json(&report),
            serde_json::json!({
                "user": "alice", "disabled": true, "next_login": "no second factor",
            })
        );
    }
}
