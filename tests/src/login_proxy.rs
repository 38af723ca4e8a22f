//! The Login interface as any D-Bus client sees it: a zbus proxy, written from the interface's
//! description rather than from the module's code, so that the tests also show that a client
//! other than pam_mfa.so (a zbus peer-to-peer connection) talks to mfad's login socket. Use it
//! on [`crate::Env::login_connection`].

use std::collections::HashMap;

use pam_mfa_api::Error;

/// A turn as it travels: `(a(ss)ss)`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, zbus::zvariant::Type)]
pub struct Turn {
    pub notices: Vec<(String, String)>,
    pub action: String,
    pub text: String,
}

#[zbus::proxy(
    interface = "org.pam_mfa.Mfad1.Login",
    default_service = "org.pam_mfa.Mfad1",
    default_path = "/org/pam_mfa/Mfad1"
)]
pub trait Login {
    /// Starts a login for `user`; returns the session id and the first turn.
    fn begin(&self, user: &str, context: HashMap<&str, &str>) -> Result<(String, Turn), Error>;

    /// Sends the reply to the last question; returns the next turn.
    fn answer(&self, session: &str, reply: &str) -> Result<Turn, Error>;

    /// Ends an unfinished login at once.
    fn cancel(&self, session: &str) -> Result<(), Error>;
}

impl TryFrom<Turn> for pam_mfa_api::Turn {
    type Error = pam_mfa_api::dialogue::UnknownStep;

    fn try_from(turn: Turn) -> Result<Self, Self::Error> {
        pam_mfa_api::Turn::try_from(pam_mfa_api::WireTurn {
            notices: turn.notices,
            action: turn.action,
            text: turn.text,
        })
    }
}
