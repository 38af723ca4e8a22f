//! One report value per command, rendered as text or as one JSON document.

use std::process::ExitCode;

use crate::failure::{Failure, Kind};

/// What a command did: one value, whose serialization is the JSON document `--json` prints
/// and which reads as text for a person.
pub trait Report: serde::Serialize {
    /// Lines for a person, without a final newline.
    fn text(&self) -> String;

    /// Whether mfactl exits 0 after showing it (a report of something that is not well,
    /// `health`'s, exits 1).
    fn succeeded(&self) -> bool {
        true
    }
}

/// Any command's [`Report`], as [`render`] takes it: both renderings of the one value.
pub trait AnyReport {
    fn text(&self) -> String;
    /// The one JSON document `--json` prints.
    fn json(&self) -> serde_json::Value;
    fn succeeded(&self) -> bool;
}

impl<R: Report> AnyReport for R {
    fn text(&self) -> String {
        Report::text(self)
    }

    fn json(&self) -> serde_json::Value {
        json(self)
    }

    fn succeeded(&self) -> bool {
        Report::succeeded(self)
    }
}

/// `report` as the JSON value `--json` prints.
pub fn json(report: &impl Report) -> serde_json::Value {
    // Serializing into a JSON value fails only for a map whose keys are not strings, and
    // reports are structs, sequences and scalars.
    serde_json::to_value(report).expect("a report is a JSON value")
}

/// A Unix time in a report: as text `YYYY-MM-DD HH:MM UTC` (see [`when`]), in JSON the number;
/// 0 means none, "never" as text and null in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(pub i64);

impl Time {
    pub fn is_never(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&when(self.0))
    }
}

impl serde::Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_never() {
            serializer.serialize_none()
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

/// A field that is `true` in every document that has it (`"enrolled": true`), for scripts that
/// check what was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct True;

impl serde::Serialize for True {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(true)
    }
}

/// What mfactl writes and how it exits.
#[derive(Debug, PartialEq, Eq)]
pub struct Rendered {
    pub stdout: String,
    pub stderr: String,
    /// The exit status: 0 on success, 2 when the command line is wrong, 1 on other failures
    /// (as mfactl(1) says).
    pub status: u8,
}

/// Renders the outcome of a command. With `json`, stdout holds exactly one document, the
/// report or `{"error": {...}}`; an error is also written to stderr as a sentence.
pub fn render(json: bool, outcome: &Result<Box<dyn AnyReport>, Failure>) -> Rendered {
    match outcome {
        Ok(report) if json => Rendered {
            stdout: document(&report.json()),
            stderr: String::new(),
            status: u8::from(!report.succeeded()),
        },
        Ok(report) => Rendered {
            stdout: format!("{}\n", report.text()),
            stderr: String::new(),
            status: u8::from(!report.succeeded()),
        },
        Err(failure) => Rendered {
            stdout: if json {
                document(&ErrorDocument { error: failure })
            } else {
                String::new()
            },
            stderr: format!("mfactl: {}\n", failure.message()),
            status: match failure.kind() {
                Kind::Usage => 2,
                _ => 1,
            },
        },
    }
}

/// What `--json` prints when a command fails: `{"error": {"name": ..., "message": ...}}`.
#[derive(serde::Serialize)]
struct ErrorDocument<'a> {
    error: &'a Failure,
}

/// One JSON document, pretty-printed, with a final newline.
fn document(value: &impl serde::Serialize) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_default()
    )
}

/// Writes the outcome and gives the exit status: 0 on success, 2 when the command line is
/// wrong, 1 on any other failure.
pub fn emit(json: bool, outcome: &Result<Box<dyn AnyReport>, Failure>) -> ExitCode {
    use std::io::Write;
    let rendered = render(json, outcome);
    let _ = std::io::stdout().write_all(rendered.stdout.as_bytes());
    let _ = std::io::stderr().write_all(rendered.stderr.as_bytes());
    ExitCode::from(rendered.status)
}

/// A Unix time as UTC `YYYY-MM-DD HH:MM`, or "never".
pub fn when(time: i64) -> String {
    if time == 0 {
        return "never".into();
    }
    pam_mfa_api::utc(time)
}

pub fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Done {
        done: True,
        at: Time,
    }

    impl Report for Done {
        fn text(&self) -> String {
            format!("done at {}", self.at)
        }
    }

    fn done() -> Box<dyn AnyReport> {
        Box::new(Done {
            done: True,
            at: Time(1),
        })
    }

    fn documents(text: &str) -> usize {
        let documents: Result<Vec<serde_json::Value>, _> = serde_json::Deserializer::from_str(text)
            .into_iter()
            .collect();
        documents.expect("valid JSON").len()
    }

    #[test]
    fn json_output_is_one_document_whatever_happens() {
        let ok: Result<Box<dyn AnyReport>, Failure> = Ok(done());
        let rendered = render(true, &ok);
        assert_eq!(rendered.status, 0);
        assert_eq!(documents(&rendered.stdout), 1);
        assert_eq!(rendered.stdout, "{\n  \"at\": 1,\n  \"done\": true\n}\n");
        assert_eq!(rendered.stderr, "");

        let failed: Result<Box<dyn AnyReport>, Failure> =
            Err(Failure::usage("expected on or off, not \"yes\""));
        let rendered = render(true, &failed);
        assert_eq!(rendered.status, 2, "a wrong command line exits 2");
        assert_eq!(documents(&rendered.stdout), 1);
        let value: serde_json::Value = serde_json::from_str(&rendered.stdout).unwrap();
        assert_eq!(value["error"]["name"], "usage");
        assert_eq!(value["error"]["message"], "expected on or off, not \"yes\"");
        assert_eq!(rendered.stderr, "mfactl: expected on or off, not \"yes\"\n");
    }

    #[test]
    fn text_output_keeps_errors_off_stdout() {
        let failed: Result<Box<dyn AnyReport>, Failure> = Err(Failure::input("cannot read f"));
        let rendered = render(false, &failed);
        assert_eq!(rendered.stdout, "");
        assert_eq!(rendered.stderr, "mfactl: cannot read f\n");
        assert_eq!(rendered.status, 1);
        let ok: Result<Box<dyn AnyReport>, Failure> = Ok(done());
        assert_eq!(render(false, &ok).stdout, "done at 1970-01-01 00:00 UTC\n");
    }

    #[test]
    fn times_render_in_utc() {
        assert_eq!(when(0), "never");
        assert_eq!(when(1), "1970-01-01 00:00 UTC");
        assert_eq!(when(1_234_567_890), "2009-02-13 23:31 UTC");
        assert_eq!(when(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(Time(0).to_string(), "never");
        assert_eq!(
            serde_json::to_value(Time(0)).unwrap(),
            serde_json::Value::Null
        );
        assert_eq!(serde_json::to_value(Time(60)).unwrap(), 60);
    }
}
