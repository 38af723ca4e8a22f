//! Asking the person at the terminal for a code: the prompt on stderr, the answer from stdin.

use std::io::{BufRead, Write};

use zeroize::Zeroizing;

use crate::failure::Failure;

/// Shows `prompt` on stderr and reads one line from stdin, trimmed, without echo when stdin
/// is a terminal (codes and recovery codes are as secret as a password while they are
/// valid). `Ok(None)` at the end of input.
pub fn read_code(prompt: &str) -> Result<Option<Zeroizing<String>>, Failure> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok();
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, saved);
        eprintln!();
    }
    let read = read.map_err(|error| Failure::input(format!("cannot read the code: {error}")))?;
    if read == 0 {
        eprintln!();
        return Ok(None);
    }
    Ok(Some(Zeroizing::new(line.trim().to_owned())))
}

/// Shows `question` on stderr and reads one line from stdin, trimmed, with echo. `Ok(None)` at
/// the end of input.
pub fn read_line(question: &str) -> Result<Option<String>, Failure> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| Failure::input(format!("cannot read the answer: {error}")))?;
    Ok((read > 0).then(|| line.trim().to_owned()))
}
