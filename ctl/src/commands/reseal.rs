//! `mfactl reseal`: mfad reads its sealing keys again and seals every secret with the newest.

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::Report;

#[derive(serde::Serialize)]
pub struct Reseal {
    /// The number of the key that seals every secret now.
    pub key: u32,
    /// Secrets sealed again with it by this command.
    pub resealed: u64,
    /// Where mfad read its keys.
    pub keys: String,
}

pub async fn run(bus: Option<&str>) -> Result<Reseal, Failure> {
    let done = connect(bus).await?.reseal().await?;
    Ok(Reseal {
        key: done.key,
        resealed: done.resealed,
        keys: done.keys,
    })
}

impl Report for Reseal {
    fn text(&self) -> String {
        let again = match self.resealed {
            0 => "none needed sealing again".to_owned(),
            1 => "1 sealed again".to_owned(),
            count => format!("{count} sealed again"),
        };
        format!(
            "every secret is sealed with key {} of {} ({again}); older keys may now be removed \
             from it",
            self.key, self.keys
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    #[test]
    fn it_says_which_key_seals_and_how_many_moved() {
        let report = Reseal {
            key: 2,
            resealed: 1,
            keys: "/etc/pam-mfa/sealing.key".into(),
        };
        assert_eq!(
            report.text(),
            "every secret is sealed with key 2 of /etc/pam-mfa/sealing.key (1 sealed again); \
             older keys may now be removed from it"
        );
        assert_eq!(
            json(&report),
            serde_json::json!({"key": 2, "resealed": 1, "keys": "/etc/pam-mfa/sealing.key"})
        );
    }
}
