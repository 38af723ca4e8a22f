//! The SQLite store's tables, as the numbered steps that made them.

/// Migrations, applied in order; `PRAGMA user_version` records how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: enrollments and enforcement.
    "CREATE TABLE enrollments (
        user TEXT PRIMARY KEY NOT NULL,
        secret BLOB NOT NULL,
        algorithm TEXT NOT NULL,
        digits INTEGER NOT NULL,
        period INTEGER NOT NULL,
        active INTEGER NOT NULL,
        created INTEGER NOT NULL,
        confirmed INTEGER,
        last_step INTEGER,
        last_used INTEGER
    ) STRICT;
    CREATE TABLE user_settings (
        user TEXT PRIMARY KEY NOT NULL,
        enforced INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE settings (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) STRICT;",
    // 2: enrollments get an id that is never reused; names differing only in case are found
    // through an index; the audit trail.
    "CREATE TABLE enrollments_2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL UNIQUE,
        secret BLOB NOT NULL,
        algorithm TEXT NOT NULL,
        digits INTEGER NOT NULL,
        period INTEGER NOT NULL,
        active INTEGER NOT NULL,
        created INTEGER NOT NULL,
        confirmed INTEGER,
        last_step INTEGER,
        last_used INTEGER
    ) STRICT;
    INSERT INTO enrollments_2
        (user, secret, algorithm, digits, period, active, created, confirmed, last_step,
         last_used)
        SELECT user, secret, algorithm, digits, period, active, created, confirmed, last_step,
               last_used
        FROM enrollments ORDER BY user;
    DROP TABLE enrollments;
    ALTER TABLE enrollments_2 RENAME TO enrollments;
    CREATE INDEX enrollments_user_nocase ON enrollments (user COLLATE NOCASE);
    CREATE INDEX user_settings_user_nocase ON user_settings (user COLLATE NOCASE);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time INTEGER NOT NULL,
        kind TEXT NOT NULL,
        user TEXT,
        line TEXT NOT NULL
    ) STRICT;",
    // 3: recovery codes, as salted hashes, each belonging to one enrollment.
    "CREATE TABLE recovery_codes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        enrollment INTEGER NOT NULL,
        salt BLOB NOT NULL,
        hash BLOB NOT NULL,
        used INTEGER
    ) STRICT;
    CREATE INDEX recovery_codes_enrollment ON recovery_codes (enrollment);",
    // 4: a user may have an active enrollment and a pending one (a new phone that replaces the
    // one in use once confirmed). Ids are kept, and so is the id sequence, so none is reused.
    "CREATE TABLE enrollments_4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL,
        secret BLOB NOT NULL,
        algorithm TEXT NOT NULL,
        digits INTEGER NOT NULL,
        period INTEGER NOT NULL,
        active INTEGER NOT NULL,
        created INTEGER NOT NULL,
        confirmed INTEGER,
        last_step INTEGER,
        last_used INTEGER
    ) STRICT;
    INSERT INTO enrollments_4
        (id, user, secret, algorithm, digits, period, active, created, confirmed, last_step,
         last_used)
        SELECT id, user, secret, algorithm, digits, period, active, created, confirmed,
               last_step, last_used
        FROM enrollments ORDER BY id;
    DELETE FROM sqlite_sequence WHERE name = 'enrollments_4';
    INSERT INTO sqlite_sequence (name, seq)
        SELECT 'enrollments_4', seq FROM sqlite_sequence WHERE name = 'enrollments';
    DROP TABLE enrollments;
    ALTER TABLE enrollments_4 RENAME TO enrollments;
    CREATE UNIQUE INDEX enrollments_user ON enrollments (user, active);
    CREATE INDEX enrollments_user_nocase ON enrollments (user COLLATE NOCASE);",
    // 5: tries of codes and locks, per user, kept across restarts.
    "CREATE TABLE lockout (
        user TEXT PRIMARY KEY NOT NULL,
        tries INTEGER NOT NULL,
        since INTEGER NOT NULL,
        locked_until INTEGER NOT NULL,
        locks INTEGER NOT NULL
    ) STRICT;",
    // 6: the audit trail read by user.
    "CREATE INDEX audit_user ON audit (user, id);",
    // 7: remembered logins: the right code of `enrollment` given at `verified` covers logins of
    // the user through `service` from `rhost` while used within the configured time.
    "CREATE TABLE remembered (
        user TEXT NOT NULL,
        service TEXT NOT NULL,
        rhost TEXT NOT NULL,
        enrollment INTEGER NOT NULL,
        verified INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        PRIMARY KEY (user, service, rhost)
    ) STRICT;",
    // 8: the names PostgreSQL has (`user` is a reserved word there), so that every statement
    // is written once for both: users are `username`, names are compared through lower(),
    // audit rows have a host (empty: a store of one host).
    "ALTER TABLE enrollments RENAME COLUMN user TO username;
    ALTER TABLE user_settings RENAME COLUMN user TO username;
    ALTER TABLE lockout RENAME COLUMN user TO username;
    ALTER TABLE remembered RENAME COLUMN user TO username;
    ALTER TABLE audit RENAME COLUMN user TO username;
    ALTER TABLE audit ADD COLUMN host TEXT NOT NULL DEFAULT '';
    DROP INDEX enrollments_user_nocase;
    DROP INDEX user_settings_user_nocase;
    CREATE INDEX enrollments_username_lower ON enrollments (lower(username));
    CREATE INDEX user_settings_username_lower ON user_settings (lower(username));",
    // 9: audit rows are numbered by their rowid alone. With AUTOINCREMENT every row appended
    // also read and rewrote the table's line in sqlite_sequence (one more page in each
    // login's commit). A new row still gets a number above every row kept, so the rows'
    // order is their numbers' order; only numbers of pruned rows can come back.
    "CREATE TABLE audit_9 (
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        kind TEXT NOT NULL,
        username TEXT,
        line TEXT NOT NULL,
        host TEXT NOT NULL DEFAULT ''
    ) STRICT;
    INSERT INTO audit_9 (id, time, kind, username, line, host)
        SELECT id, time, kind, username, line, host FROM audit ORDER BY id;
    DROP TABLE audit;
    ALTER TABLE audit_9 RENAME TO audit;
    CREATE INDEX audit_user ON audit (username, id);
    DELETE FROM sqlite_sequence WHERE name IN ('audit', 'audit_9');",
    // 10: secrets sealed at rest: the number of the key that sealed each (none: not sealed
    // yet, which mfad mends when it starts).
    "ALTER TABLE enrollments ADD COLUMN sealed_with INTEGER;
    CREATE INDEX enrollments_sealed_with ON enrollments (sealed_with, id);",
    // 11: counter-based tokens (HOTP) beside time-based ones: `last_step` holds the counter of
    // the last code accepted.
    "ALTER TABLE enrollments ADD COLUMN kind TEXT NOT NULL DEFAULT 'totp';",
    // 12: contacts (email addresses, phone numbers), sealed, each with the code last sent
    // there, sealed too. Numbers are never reused: a sealed value is bound to its row's. When
    // each user was last sent a code (or one was tried), kept apart from the contacts so that
    // removing one does not lift the wait.
    "CREATE TABLE contacts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL,
        kind TEXT NOT NULL,
        address BLOB NOT NULL,
        masked TEXT NOT NULL,
        sealed_with INTEGER NOT NULL,
        added INTEGER NOT NULL,
        verified INTEGER,
        code BLOB,
        code_sealed_with INTEGER,
        code_sent INTEGER,
        code_expires INTEGER
    ) STRICT;
    CREATE INDEX contacts_username_lower ON contacts (lower(username));
    CREATE INDEX contacts_sealed_with ON contacts (sealed_with, id);
    CREATE TABLE contact_sends (
        username TEXT PRIMARY KEY NOT NULL,
        verify_sent INTEGER,
        login_sent INTEGER
    ) STRICT;",
];
