//! mfad's configuration file: any text, parsed and validated; and the networks its rules name,
//! with the remote hosts they are matched against.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_mfa_config::{Config, Network, carries_password};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = Config::parse(text) {
        assert!(!error.is_empty());
    }
    let _ = carries_password(text);

    // The first line as a network, the second as a remote host.
    let mut lines = text.splitn(2, '\n');
    let network = lines.next().unwrap_or("");
    let rhost = lines.next().unwrap_or("");
    if let Ok(parsed) = Network::parse(network) {
        // What is shown reads back as the same network.
        assert_eq!(Network::parse(&parsed.to_string()), Ok(parsed));
        let _ = parsed.contains(rhost);
        match parsed {
            Network::Local => assert!(parsed.contains("")),
            // A network holds its own address.
            Network::Prefix(address, _) => assert!(parsed.contains(&address.to_string())),
        }
    }
});
