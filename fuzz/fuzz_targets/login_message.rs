//! A message of the login socket as bytes, read by both ends: by mfad as a Login call, by the
//! module as the reply to each of its calls; its framing agrees with its reading.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_mfa_login::marshal::{METHOD_CALL, read_message};
use pam_mfa_login::wire::{MAX_MESSAGE_LEN, message_len};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = read_message(data) else {
        return;
    };
    // The header that frames a message gives the length of every message read.
    let mut head = [0u8; 16];
    head.copy_from_slice(&data[..16]);
    if data.len() <= MAX_MESSAGE_LEN {
        assert_eq!(message_len(&head, MAX_MESSAGE_LEN).ok(), Some(data.len()));
    }
    if message.kind == METHOD_CALL {
        pam_mfa_fuzz::check_call(&message);
    }
    pam_mfa_fuzz::check_replies(&message);
});
