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
