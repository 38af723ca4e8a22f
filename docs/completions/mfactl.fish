# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mfactl_global_optspecs
    string join \n bus= json h/help V/version
end

function __fish_mfactl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mfactl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mfactl_using_subcommand
    set -l cmd (__fish_mfactl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mfactl -n "__fish_mfactl_needs_command" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_needs_command" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_needs_command" -s V -l version -d 'Print version'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "enroll" -d 'Set up an authenticator app: show a QR code to scan, confirm with a code from the app, and show the recovery codes once'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "recovery-codes" -d 'Make new recovery codes for your own account; the old ones stop working at once'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "disable" -d 'Remove your own authenticator app and recovery codes'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "import" -d 'Enroll many users at once from a file of "USER SECRET" lines ("-" reads stdin), or from the files of google-authenticator, pam_oath, or a token vendor (PSKC)'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "contact" -d 'Add, verify, list or remove email addresses and phone numbers that codes are sent to'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "status" -d 'Show USER\'s enrollment and enforcement, or your own without USER'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "users" -d 'List users with an enrollment or an enforcement setting'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "reset" -d 'Remove USER\'s app, recovery codes and any unfinished enrollment (a lost phone)'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "audit" -d 'Read the audit trail: who did what, when, oldest first'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "explain" -d 'Say what a login of USER would do, and the rule that decided, without logging in'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "reload" -d 'Make mfad read its configuration file again (as SIGHUP does)'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "reseal" -d 'Make mfad read its sealing keys again and seal every stored secret with the newest'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "health" -d 'Show where mfad keeps its state and whether it answers'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "resync" -d 'Bring USER\'s counter-based (HOTP) token back in step after many presses without a login'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "unlock" -d 'End USER\'s lock after too many wrong codes, at once, and clear the count of tries'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "enforce" -d 'Require MFA of every user (--all) or of one user'
complete -c mfactl -n "__fish_mfactl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfactl -n "__fish_mfactl_using_subcommand enroll" -l secret -d 'Use this Base32 secret instead of generating one (administrators; for scripted tests). Other local users can read command lines: for real secrets use mfactl import, which reads them from a file or stdin' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand enroll" -l qr-png -d 'Also write the QR code as a PNG image to FILE (created with mode 0600: it holds the secret; it must not exist yet)' -r -F
complete -c mfactl -n "__fish_mfactl_using_subcommand enroll" -l qr-background -d 'The terminal background the QR code is drawn for; drawn for the wrong one it looks inverted, which some apps cannot read' -r -f -a "dark\t''
light\t''"
complete -c mfactl -n "__fish_mfactl_using_subcommand enroll" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand enroll" -l hotp -d 'Set up a counter-based (HOTP) token instead of a time-based app: an app set up for HOTP codes, or, with --secret, a hardware token with a button (its secret from the vendor). Its codes do not expire; each press moves the token on, and logins look for a code among the next hotp.look_ahead ones (mfad.toml(5))'
complete -c mfactl -n "__fish_mfactl_using_subcommand enroll" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand enroll" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand recovery-codes" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand recovery-codes" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand recovery-codes" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand disable" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand disable" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand disable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand import" -l serials -d 'With --pskc: a file of "SERIAL USER" lines, the user of each token' -r -F
complete -c mfactl -n "__fish_mfactl_using_subcommand import" -l pskc-key -d 'With --pskc: a file holding the pre-shared key the PSKC file is encrypted with, in hexadecimal (readable by its owner only)' -r -F
complete -c mfactl -n "__fish_mfactl_using_subcommand import" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand import" -l google-authenticator -d 'Read google-authenticator\'s files, one per user, instead of "USER SECRET" lines'
complete -c mfactl -n "__fish_mfactl_using_subcommand import" -l pam-oath -d 'Read pam_oath\'s users file'
complete -c mfactl -n "__fish_mfactl_using_subcommand import" -l pskc -d 'Read a PSKC file of hardware tokens (with --serials)'
complete -c mfactl -n "__fish_mfactl_using_subcommand import" -l skip-invalid -d 'Import the entries that can be, and name those that cannot, instead of importing nothing'
complete -c mfactl -n "__fish_mfactl_using_subcommand import" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and not __fish_seen_subcommand_from add verify list remove help" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and not __fish_seen_subcommand_from add verify list remove help" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and not __fish_seen_subcommand_from add verify list remove help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and not __fish_seen_subcommand_from add verify list remove help" -f -a "add" -d 'Add a contact and send a code there (type it with mfactl contact verify)'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and not __fish_seen_subcommand_from add verify list remove help" -f -a "verify" -d 'Type the code sent to the contact you added; asked on stderr without CODE'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and not __fish_seen_subcommand_from add verify list remove help" -f -a "list" -d 'List the contacts, masked, and whether each is verified'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and not __fish_seen_subcommand_from add verify list remove help" -f -a "remove" -d 'Remove a contact, named by its whole address or as mfactl contact list shows it'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and not __fish_seen_subcommand_from add verify list remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from add" -l email -d 'An email address' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from add" -l phone -d 'A phone number in international form (+44 7700 900123)' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from add" -l user -d 'The user whose contact it is (administrators); without it, yourself' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from add" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from add" -l verified -d 'Count the contact at once, without a code (administrators, with --user)'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from add" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from verify" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from verify" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from list" -l user -d 'The user whose contacts are listed (administrators); without it, yours' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from list" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from list" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from remove" -l email -d 'The email address, or its masked form (a***@example.org)' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from remove" -l phone -d 'The phone number, or its masked form as the list shows it' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from remove" -l user -d 'The user whose contact it is (administrators); without it, yourself' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from remove" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from remove" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a contact and send a code there (type it with mfactl contact verify)'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Type the code sent to the contact you added; asked on stderr without CODE'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the contacts, masked, and whether each is verified'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a contact, named by its whole address or as mfactl contact list shows it'
complete -c mfactl -n "__fish_mfactl_using_subcommand contact; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfactl -n "__fish_mfactl_using_subcommand status" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand status" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand users" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand users" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand users" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand reset" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand reset" -s y -l yes -d 'Remove without asking (scripts: without a terminal, reset refuses to go on without it)'
complete -c mfactl -n "__fish_mfactl_using_subcommand reset" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand reset" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand audit" -l user -d 'Only entries about this user' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand audit" -l since -d 'Only entries since TIME: Unix seconds, a day YYYY-MM-DD (UTC), or a time ago (30m, 12h, 7d)' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand audit" -l event -d 'Only entries of this kind (see the list above)' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand audit" -l limit -d 'At most this many entries, the newest (1 to 1000000)' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand audit" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand audit" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand audit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand explain" -l service -d 'The PAM service of the login (sshd, sudo, su, login...); without it, rules about services do not match' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand explain" -l rhost -d 'The remote host the login comes from (an IP address, as sshd passes it); without it, a login with no remote host (the console, su, sudo), which the network "local" matches' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand explain" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand explain" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand explain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand reload" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand reload" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand reload" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand reseal" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand reseal" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand reseal" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand health" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand health" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand health" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand resync" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand resync" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand resync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand unlock" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand unlock" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand unlock" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand enforce" -l bus -d 'D-Bus address of the bus mfad is on, instead of the system bus' -r
complete -c mfactl -n "__fish_mfactl_using_subcommand enforce" -l all -d 'All users, instead of one'
complete -c mfactl -n "__fish_mfactl_using_subcommand enforce" -l json -d 'Print exactly one JSON document on stdout instead of text, errors included'
complete -c mfactl -n "__fish_mfactl_using_subcommand enforce" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "enroll" -d 'Set up an authenticator app: show a QR code to scan, confirm with a code from the app, and show the recovery codes once'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "recovery-codes" -d 'Make new recovery codes for your own account; the old ones stop working at once'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "disable" -d 'Remove your own authenticator app and recovery codes'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "import" -d 'Enroll many users at once from a file of "USER SECRET" lines ("-" reads stdin), or from the files of google-authenticator, pam_oath, or a token vendor (PSKC)'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "contact" -d 'Add, verify, list or remove email addresses and phone numbers that codes are sent to'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "status" -d 'Show USER\'s enrollment and enforcement, or your own without USER'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "users" -d 'List users with an enrollment or an enforcement setting'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "reset" -d 'Remove USER\'s app, recovery codes and any unfinished enrollment (a lost phone)'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "audit" -d 'Read the audit trail: who did what, when, oldest first'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "explain" -d 'Say what a login of USER would do, and the rule that decided, without logging in'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "reload" -d 'Make mfad read its configuration file again (as SIGHUP does)'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "reseal" -d 'Make mfad read its sealing keys again and seal every stored secret with the newest'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "health" -d 'Show where mfad keeps its state and whether it answers'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "resync" -d 'Bring USER\'s counter-based (HOTP) token back in step after many presses without a login'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "unlock" -d 'End USER\'s lock after too many wrong codes, at once, and clear the count of tries'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "enforce" -d 'Require MFA of every user (--all) or of one user'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and not __fish_seen_subcommand_from enroll recovery-codes disable import contact status users reset audit explain reload reseal health resync unlock enforce help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and __fish_seen_subcommand_from contact" -f -a "add" -d 'Add a contact and send a code there (type it with mfactl contact verify)'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and __fish_seen_subcommand_from contact" -f -a "verify" -d 'Type the code sent to the contact you added; asked on stderr without CODE'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and __fish_seen_subcommand_from contact" -f -a "list" -d 'List the contacts, masked, and whether each is verified'
complete -c mfactl -n "__fish_mfactl_using_subcommand help; and __fish_seen_subcommand_from contact" -f -a "remove" -d 'Remove a contact, named by its whole address or as mfactl contact list shows it'
