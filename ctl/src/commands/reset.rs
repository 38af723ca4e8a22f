//! `mfactl reset USER`: remove an enrollment at once (a lost or replaced phone).

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::Report;

pub struct Reset {
    pub user: String,
    pub removed: bool,
}

pub async fn run(bus: Option<&str>, user: &str) -> Result<Reset, Failure> {
    let admin = connect(bus).await?;
    let removed = admin.reset(user).await?;
    Ok(Reset {
        user: user.to_owned(),
        removed,
    })
}

impl Report for Reset {
    fn text(&self) -> String {
        let user = &self.user;
        if self.removed {
            format!("{user}: enrollment removed; the next login needs a new enrollment")
        } else {
            format!("{user}: was not enrolled; nothing to remove")
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "user": self.user, "removed": self.removed })
    }
}
