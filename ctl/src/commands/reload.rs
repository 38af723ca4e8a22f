//! `mfactl reload`: mfad reads its configuration file again.

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::Report;

pub struct Reload(String);

pub async fn run(bus: Option<&str>) -> Result<Reload, Failure> {
    Ok(Reload(connect(bus).await?.reload().await?))
}

impl Report for Reload {
    fn text(&self) -> String {
        self.0.clone()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "reloaded": true, "summary": self.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_text() {
        let report = Reload("reloaded /etc/pam-mfa/mfad.toml: no key changed".into());
        assert_eq!(
            report.text(),
            "reloaded /etc/pam-mfa/mfad.toml: no key changed"
        );
        assert_eq!(
            report.json(),
            serde_json::json!({
                "reloaded": true,
                "summary": "reloaded /etc/pam-mfa/mfad.toml: no key changed",
            })
        );
    }
}
