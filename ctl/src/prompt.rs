//! Asking the person at the terminal for a code: the prompt on stderr, the answer from stdin.

use std::io::{BufRead, Write};

use zeroize::Zeroizing;

use crate::failure::Failure;

/// Shows `prompt` on stderr and reads one line from stdin, trimmed. `Ok(None)` at the end of
/// input.
pub fn read_code(prompt: &str) -> Result<Option<Zeroizing<String>>, Failure> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = Zeroizing::new(String::new());
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| Failure::input(format!("cannot read the code: {error}")))?;
    if read == 0 {
        eprintln!();
        return Ok(None);
    }
    Ok(Some(Zeroizing::new(line.trim().to_owned())))
}
