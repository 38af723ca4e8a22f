//! `mfactl reload`: mfad reads its configuration file again.

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::{Report, True};

#[derive(serde::Serialize)]
pub struct Reload {
    pub reloaded: True,
    /// What changed, as mfad says it.
    pub summary: String,
}

pub async fn run(bus: Option<&str>) -> Result<Reload, Failure> {
    let summary = connect(bus).await?.reload().await?;
    Ok(Reload {
        reloaded: True,
        summary,
    })
}

impl Report for Reload {
    fn text(&self) -> String {
        self.summary.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json;

    #[test]
    fn the_summary_is_the_text() {
        let report = Reload {
            reloaded: True,
            summary: "reloaded /etc/pam-mfa/mfad.toml: no key changed".into(),
        };
        assert_eq!(
            report.text(),
            "reloaded /etc/pam-mfa/mfad.toml: no key changed"
        );
        assert_eq!(
            json(&report),
            serde_json::json!({
                "reloaded": true,
                "summary": "reloaded /etc/pam-mfa/mfad.toml: no key changed",
            })
        );
    }
}
