//! `mfactl import FILE`: enroll many users at once from `USER SECRET` lines.

use std::io::Read;
use std::path::Path;

use pam_mfa_api::limits::MAX_IMPORT;
use zeroize::Zeroizing;

use crate::connect::connect;
use crate::failure::Failure;
use crate::report::Report;

pub struct Import {
    pub imported: usize,
    /// The file as named on the command line (`-` for stdin).
    pub from: String,
}

pub async fn run(bus: Option<&str>, file: &Path) -> Result<Import, Failure> {
    let admin = connect(bus).await?;
    let name = file.display().to_string();
    let mut text = Zeroizing::new(String::new());
    let read = if name == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|error| Failure::input(format!("cannot read {name}: {error}")))?;
    let entries = Zeroizing::new(parse(&name, &text)?);
    let mut imported = 0usize;
    for batch in entries.chunks(MAX_IMPORT) {
        let pairs: Vec<(&str, &str)> = batch
            .iter()
            .map(|(u, s)| (u.as_str(), s.as_str()))
            .collect();
        match admin.import_enrollments(&pairs).await {
            Ok(count) => imported += count as usize,
            Err(error) => {
                return Err(Failure::from(error).and(&format!(
                    " ({imported} of {} enrollments were imported before this batch)",
                    entries.len()
                )));
            }
        }
    }
    Ok(Import {
        imported,
        from: name,
    })
}

/// Parses `USER SECRET` lines; errors name the line.
fn parse(name: &str, text: &str) -> Result<Vec<(String, String)>, Failure> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(user), Some(secret), None) => entries.push((user.to_owned(), secret.to_owned())),
            _ => {
                return Err(Failure::input(format!(
                    "{name}:{}: expected a user name and a Base32 secret",
                    index + 1
                )));
            }
        }
    }
    Ok(entries)
}

impl Report for Import {
    fn text(&self) -> String {
        let plural = if self.imported == 1 { "" } else { "s" };
        format!(
            "imported {} enrollment{plural} from {}",
            self.imported, self.from
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "imported": self.imported })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_files_are_parsed_with_line_numbers() {
        let text = "# users\nalice GEZDGNBV\n\n  bob\tJBSWY3DP  \n";
        let entries = parse("f", text).ok().unwrap();
        assert_eq!(entries[0], ("alice".to_owned(), "GEZDGNBV".to_owned()));
        assert_eq!(entries[1], ("bob".to_owned(), "JBSWY3DP".to_owned()));
        let Err(failure) = parse("f", "alice S\nbob\n") else {
            panic!("a line without a secret is an error");
        };
        assert_eq!(
            failure.message(),
            "f:2: expected a user name and a Base32 secret"
        );
    }

    #[test]
    fn one_enrollment_is_singular() {
        let report = Import {
            imported: 1,
            from: "-".into(),
        };
        assert_eq!(report.text(), "imported 1 enrollment from -");
        assert_eq!(report.json(), serde_json::json!({ "imported": 1 }));
    }
}
