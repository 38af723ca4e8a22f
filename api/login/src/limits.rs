//! Limits shared by the module, the daemon and `mfactl`, each defined once.

/// Longest user name accepted (glibc allows 256 bytes with the terminating NUL).
pub const MAX_USER_LEN: usize = 255;

/// Longest reply to a question that is sent to or read by the daemon. Codes and recovery codes
/// are far shorter; the module sends an empty reply instead of a longer one, which the daemon
/// counts as a wrong try.
pub const MAX_REPLY_LEN: usize = 64;

/// Context values (service, remote host, ...) are cut to this many characters before they are
/// used or logged.
pub const MAX_CONTEXT_LEN: usize = 128;

/// Most enrollments one `Admin.ImportEnrollments` call takes.
pub const MAX_IMPORT: usize = 10_000;

/// Most rows of the audit trail one `User.Audit` call looks at (and so returns); `mfactl audit`
/// asks for more pages when it wants more.
pub const MAX_AUDIT_PAGE: usize = 1_000;
