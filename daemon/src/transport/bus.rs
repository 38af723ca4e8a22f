//! The system bus: each method identifies its caller, takes a place among that uid's calls in
//! flight, and hands the call to the core off the bus executor. It translates; it does not
//! decide.

use pam_mfa_api::{
    AuditPage, AuditQuery, ContactInfo, Error, Explanation, NewEnrollment, ResetOutcome,
    TokenImport, TokenImports, UserStatus,
};
use zbus::message::Header;
use zbus::{Connection, interface};
use zeroize::Zeroizing;

use super::identity::InFlight;
use super::{Shared, off_executor};
use crate::core::Caller;

/// What the bus adds to the shared state: callers identified by the bus's credentials.
impl Shared {
    async fn enter(
        &self,
        connection: &Connection,
        header: &Header<'_>,
    ) -> Result<(Caller, InFlight), Error> {
        let caller = self.identities.caller(connection, header).await?;
        let permit = self.identities.enter(&caller)?;
        Ok((caller, permit))
    }

    async fn admin(
        &self,
        connection: &Connection,
        header: &Header<'_>,
    ) -> Result<(Caller, InFlight), Error> {
        let (caller, permit) = self.enter(connection, header).await?;
        // Off the executor: with an admin_group the check looks up groups, which can hang.
        let core = self.core.clone();
        let checked = caller.clone();
        off_executor(move || core.require_admin(&checked)).await?;
        Ok((caller, permit))
    }
}

/// `org.pam_mfa.Mfad1.User`: self-service, each caller for its own account.
pub struct UserInterface(pub Shared);

#[interface(name = "org.pam_mfa.Mfad1.User")]
impl UserInterface {
    async fn status(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<UserStatus, Error> {
        let (caller, permit) = self.0.enter(connection, &header).await?;
        self.0
            .run(permit, move |core| core.own_status(&caller))
            .await
    }

    async fn begin_enrollment(
        &self,
        kind: String,
        proof: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<NewEnrollment, Error> {
        let proof = Zeroizing::new(proof);
        let (caller, permit) = self.0.enter(connection, &header).await?;
        self.0
            .run(permit, move |core| {
                core.own_begin_enrollment(&caller, &kind, &proof)
            })
            .await
    }

    async fn confirm_enrollment(
        &self,
        code: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<String>, Error> {
        let code = Zeroizing::new(code);
        let (caller, permit) = self.0.enter(connection, &header).await?;
        self.0
            .run(permit, move |core| {
                core.own_confirm_enrollment(&caller, &code)
            })
            .await
    }

    async fn renew_recovery_codes(
        &self,
        code: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<String>, Error> {
        let code = Zeroizing::new(code);
        let (caller, permit) = self.0.enter(connection, &header).await?;
        self.0
            .run(permit, move |core| {
                core.renew_recovery_codes(&caller, &code)
            })
            .await
    }

    async fn audit(
        &self,
        query: AuditQuery,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<AuditPage, Error> {
        let (caller, permit) = self.0.enter(connection, &header).await?;
        self.0
            .run(permit, move |core| core.audit(&caller, &query))
            .await
    }

    async fn disable(
        &self,
        code: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let code = Zeroizing::new(code);
        let (caller, permit) = self.0.enter(connection, &header).await?;
        self.0
            .run(permit, move |core| core.disable(&caller, &code))
            .await
    }

    async fn add_contact(
        &self,
        kind: String,
        address: String,
        proof: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<String, Error> {
        let proof = Zeroizing::new(proof);
        let (caller, permit) = self.0.enter(connection, &header).await?;
        self.0
            .run(permit, move |core| {
                core.own_add_contact(&caller, &kind, &address, &proof)
            })
            .await
    }

    async fn verify_contact(
        &self,
        code: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<String, Error> {
        let code = Zeroizing::new(code);
        let (caller, permit) = self.0.enter(connection, &header).await?;
        self.0
            .run(permit, move |core| core.own_verify_contact(&caller, &code))
            .await
    }

    async fn contacts(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<ContactInfo>, Error> {
        let (caller, permit) = self.0.enter(connection, &header).await?;
        self.0
            .run(permit, move |core| core.own_contacts(&caller))
            .await
    }

    async fn remove_contact(
        &self,
        kind: String,
        address: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let (caller, permit) = self.0.enter(connection, &header).await?;
        self.0
            .run(permit, move |core| {
                core.own_remove_contact(&caller, &kind, &address)
            })
            .await
    }
}

/// `org.pam_mfa.Mfad1.Admin`: administration, for root and the configured admin group.
pub struct AdminInterface(pub Shared);

#[interface(name = "org.pam_mfa.Mfad1.Admin")]
impl AdminInterface {
    async fn begin_enrollment(
        &self,
        user: String,
        kind: String,
        secret: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<NewEnrollment, Error> {
        let secret = Zeroizing::new(secret);
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| {
                core.begin_enrollment(&caller, &user, &kind, &secret)
            })
            .await
    }

    /// Adds active enrollments of tokens made elsewhere, all or none.
    async fn import_tokens(
        &self,
        entries: Vec<TokenImport>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<u32, Error> {
        let entries = TokenImports(entries);
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| core.import_tokens(&caller, &entries.0))
            .await
    }

    /// Brings a counter-based token back in step with two codes in a row.
    async fn resync(
        &self,
        user: String,
        first: String,
        second: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<u64, Error> {
        let codes = Zeroizing::new((first, second));
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| {
                core.resync(&caller, &user, (&codes.0, &codes.1))
            })
            .await
    }

    async fn import_enrollments(
        &self,
        entries: Vec<(String, String)>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<u32, Error> {
        let entries = Zeroizing::new(entries);
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| core.import(&caller, &entries))
            .await
    }

    async fn confirm_enrollment(
        &self,
        user: String,
        code: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<String>, Error> {
        let code = Zeroizing::new(code);
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| {
                core.confirm_enrollment(&caller, &user, &code)
            })
            .await
    }

    async fn unlock(
        &self,
        user: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<bool, Error> {
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| core.unlock(&caller, &user))
            .await
    }

    async fn explain(
        &self,
        user: String,
        service: String,
        rhost: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Explanation, Error> {
        let (_, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| core.explain(&user, &service, &rhost))
            .await
    }

    async fn reload(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<String, Error> {
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| core.reload(Some(&caller)))
            .await
    }

    async fn reseal(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<pam_mfa_api::Resealed, Error> {
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0.run(permit, move |core| core.reseal(&caller)).await
    }

    async fn health(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<pam_mfa_api::StoreHealth, Error> {
        let (_caller, permit) = self.0.admin(connection, &header).await?;
        self.0.run(permit, move |core| Ok(core.health())).await
    }

    async fn reset(
        &self,
        user: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<ResetOutcome, Error> {
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| core.reset(&caller, &user))
            .await
    }

    async fn status(
        &self,
        user: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<UserStatus, Error> {
        let (_, permit) = self.0.admin(connection, &header).await?;
        self.0.run(permit, move |core| core.status(&user)).await
    }

    async fn users(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<UserStatus>, Error> {
        let (_, permit) = self.0.admin(connection, &header).await?;
        self.0.run(permit, |core| core.users()).await
    }

    async fn set_global_enforcement(
        &self,
        on: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| core.set_global_enforcement(&caller, on))
            .await
    }

    async fn global_enforcement(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<bool, Error> {
        let (_, permit) = self.0.admin(connection, &header).await?;
        self.0.run(permit, |core| core.global_enforcement()).await
    }

    async fn set_user_enforcement(
        &self,
        user: String,
        on: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| {
                core.set_user_enforcement(&caller, &user, on)
            })
            .await
    }

    async fn add_contact(
        &self,
        user: String,
        kind: String,
        address: String,
        verified: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<String, Error> {
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| {
                core.add_contact(&caller, &user, (&kind, &address), verified)
            })
            .await
    }

    async fn contacts(
        &self,
        user: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<ContactInfo>, Error> {
        let (_, permit) = self.0.admin(connection, &header).await?;
        self.0.run(permit, move |core| core.contacts(&user)).await
    }

    async fn remove_contact(
        &self,
        user: String,
        kind: String,
        address: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let (caller, permit) = self.0.admin(connection, &header).await?;
        self.0
            .run(permit, move |core| {
                core.remove_contact(&caller, &user, &kind, &address)
            })
            .await
    }
}
