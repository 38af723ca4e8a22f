//! `mfactl resync USER`: bring a counter-based (HOTP) token back in step with two codes it
//! shows one after the other.

use zeroize::Zeroizing;

use crate::connect::connect;
use crate::failure::Failure;
use crate::prompt::read_code;
use crate::report::Report;

#[derive(serde::Serialize)]
pub struct Resync {
    pub user: String,
    /// The counter value of the second code: the last one used now.
    pub counter: u64,
}

pub async fn run(bus: Option<&str>, user: &str) -> Result<Resync, Failure> {
    let admin = connect(bus).await?;
    let mut codes: Vec<Zeroizing<String>> = Vec::with_capacity(2);
    for prompt in [
        "Press the token's button and type its code: ",
        "Press the button again and type the next code: ",
    ] {
        let code = read_code(prompt)?.ok_or_else(|| {
            Failure::input(format!(
                "two codes are needed: {user}'s token was not changed"
            ))
        })?;
        codes.push(code);
    }
    let counter = admin.resync(user, &codes[0], &codes[1]).await?;
    Ok(Resync {
        user: user.to_owned(),
        counter,
    })
}

impl Report for Resync {
    fn text(&self) -> String {
        format!(
            "{}: the token is back in step (its code #{} was the last used); the next login \
             takes its next code",
            self.user, self.counter
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    #[test]
    fn a_resync_names_the_counter() {
        let report = Resync {
            user: "lee".into(),
            counter: 41,
        };
        assert!(
            report
                .text()
                .starts_with("lee: the token is back in step (its code #41")
        );
        assert_eq!(
            json(&report),
            serde_json::json!({ "user": "lee", "counter": 41 })
        );
    }
}
