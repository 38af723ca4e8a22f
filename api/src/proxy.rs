//! Client proxies for `mfad`'s interfaces.

use crate::{
    AuditPage, AuditQuery, ContactInfo, Error, Explanation, NewEnrollment, TokenImport, UserStatus,
};

/// Self-service: every method acts on the caller's own account, known from the bus (never
/// from an argument).
#[zbus::proxy(
    interface = "org.pam_mfa.Mfad1.User",
    default_service = "org.pam_mfa.Mfad1",
    default_path = "/org/pam_mfa/Mfad1"
)]
pub trait User {
    /// The caller's own enrollment and enforcement.
    fn status(&self) -> Result<UserStatus, Error>;

    /// Starts an enrollment of the caller's account with a new secret, for an app of `kind`
    /// (`totp`, `hotp`; empty: `totp`), or hands back the caller's unfinished one. If the
    /// caller already has an app, this is its replacement, and `proof` must be a current code
    /// from that app or a recovery code (else empty): the old app keeps working until the new
    /// one is confirmed.
    fn begin_enrollment(&self, kind: &str, proof: &str) -> Result<NewEnrollment, Error>;

    /// Confirms the caller's pending enrollment with a current code from the new app; returns
    /// its recovery codes, to be shown once.
    fn confirm_enrollment(&self, code: &str) -> Result<Vec<String>, Error>;

    /// New recovery codes, for a current code from the app; the old ones stop working.
    fn renew_recovery_codes(&self, code: &str) -> Result<Vec<String>, Error>;

    /// A page of the audit trail (see [`AuditQuery`]), oldest first, and where the next,
    /// older page ends. Administrators may read anyone's; other callers only their own,
    /// whatever they ask.
    fn audit(&self, query: &AuditQuery) -> Result<AuditPage, Error>;

    /// Removes the caller's app and recovery codes, for a current code or a recovery code.
    /// Refused (`Required`) while MFA is required of the caller.
    fn disable(&self, code: &str) -> Result<(), Error>;

    /// Adds a contact of `kind` (`email`, `phone`) to the caller's account and sends a code
    /// there, which `VerifyContact` takes; returns where it went, masked. With an app in use,
    /// `proof` must be a current code from it or a recovery code (else empty).
    fn add_contact(&self, kind: &str, address: &str, proof: &str) -> Result<String, Error>;

    /// Verifies the caller's contact that waits for its code; returns it, masked.
    fn verify_contact(&self, code: &str) -> Result<String, Error>;

    /// The caller's contacts.
    fn contacts(&self) -> Result<Vec<ContactInfo>, Error>;

    /// Removes a contact of the caller's.
    fn remove_contact(&self, kind: &str, address: &str) -> Result<(), Error>;
}

/// Administration: uid 0, and members of the configured `admin_group`.
#[zbus::proxy(
    interface = "org.pam_mfa.Mfad1.Admin",
    default_service = "org.pam_mfa.Mfad1",
    default_path = "/org/pam_mfa/Mfad1"
)]
pub trait Admin {
    /// Creates a pending enrollment of `kind` (`totp`, `hotp`; empty: `totp`) for `user`,
    /// with `secret` (Base32; a hardware token's) or, when empty, a new random one. It becomes
    /// active only after `ConfirmEnrollment` with a current code.
    fn begin_enrollment(
        &self,
        user: &str,
        kind: &str,
        secret: &str,
    ) -> Result<NewEnrollment, Error>;

    /// Adds active enrollments for `(user, Base32 secret)` pairs, all or none, with the
    /// configured parameters; at most 10,000 per call. Returns how many were added.
    fn import_enrollments(&self, entries: &[(&str, &str)]) -> Result<u32, Error>;

    /// Adds active enrollments of tokens made elsewhere, all or none (see [`TokenImport`]):
    /// google-authenticator's files, pam_oath's users file, PSKC files. At most 10,000 per
    /// call. Returns how many were added.
    fn import_tokens(&self, entries: &[TokenImport]) -> Result<u32, Error>;

    /// Brings the counter-based token of `user` back in step: `first` and `second` are two
    /// codes it showed one after the other, looked for within `hotp.resync_window` values
    /// after its counter. Returns the counter value of `second`, the last one used now.
    fn resync(&self, user: &str, first: &str, second: &str) -> Result<u64, Error>;

    /// Activates the pending enrollment of `user` if `code` is current for it. Returns its new
    /// recovery codes, to be shown once: they are not kept anywhere in a form that can be shown
    /// again.
    fn confirm_enrollment(&self, user: &str, code: &str) -> Result<Vec<String>, Error>;

    /// Ends a lock of `user` (too many wrong codes) and clears the count of tries. Returns
    /// whether the user was locked.
    fn unlock(&self, user: &str) -> Result<bool, Error>;

    /// What a login of `user` through PAM service `service` from remote host `rhost` (empty:
    /// none) would do, and the rule that decided; nothing is changed or recorded.
    fn explain(&self, user: &str, service: &str, rhost: &str) -> Result<Explanation, Error>;

    /// Reads mfad's configuration file again and puts it in use; an invalid file is refused
    /// and the configuration in use stays. Returns what changed.
    fn reload(&self) -> Result<String, Error>;

    /// Reads the sealing keys again (the key file, or the systemd credential mfad was started
    /// with) and seals every stored secret with the newest; keys that do not open what is
    /// stored are refused and the keys in use stay. Long for many users.
    fn reseal(&self) -> Result<crate::Resealed, Error>;

    /// Where mfad keeps its state, the database server it uses, whether the store answers now
    /// and its last failure.
    fn health(&self) -> Result<crate::StoreHealth, Error>;

    /// Removes the enrollment (pending or active) of `user` at once, and says what the user's
    /// next login does now.
    fn reset(&self, user: &str) -> Result<crate::ResetOutcome, Error>;

    fn status(&self, user: &str) -> Result<UserStatus, Error>;

    /// Every user with an enrollment or an enforcement setting.
    fn users(&self) -> Result<Vec<UserStatus>, Error>;

    /// Requires MFA of every user (on) or only of those enforced one by one (off).
    fn set_global_enforcement(&self, on: bool) -> Result<(), Error>;

    fn global_enforcement(&self) -> Result<bool, Error>;

    fn set_user_enforcement(&self, user: &str, on: bool) -> Result<(), Error>;

    /// Adds a contact of `kind` to `user`'s account: verified at once if `verified` (the
    /// administrator vouches for it), else a code is sent there for the user to type
    /// (`User.VerifyContact`). Returns the contact, masked.
    fn add_contact(
        &self,
        user: &str,
        kind: &str,
        address: &str,
        verified: bool,
    ) -> Result<String, Error>;

    fn contacts(&self, user: &str) -> Result<Vec<ContactInfo>, Error>;

    fn remove_contact(&self, user: &str, kind: &str, address: &str) -> Result<(), Error>;
}
