//! Segment names: what a caller may pass, and where the file lives.

use crate::error::Error;

/// Longest accepted name, in bytes: a segment is a file named
/// `shmkit.<name>`, and Linux, macOS and the BSDs all allow file names of 255
/// bytes (`NAME_MAX`). shmkit never uses `shm_open`, so macOS's 31-byte limit
/// on POSIX shared-memory names does not apply.
pub const MAX_NAME_LEN: usize = 255 - PREFIX.len();

/// Prefix of every segment file, so that `ls /dev/shm` shows what is ours.
pub(crate) const PREFIX: &str = "shmkit.";

/// Checks a segment name: 1 to [`MAX_NAME_LEN`] bytes of ASCII letters, digits,
/// `_`, `-` and `.`, not starting with `.` or `-`.
///
/// This excludes path separators, `..`, NUL, white space and anything a shell
/// would need quoted, so a name can be pasted into a command line as it is.
pub(crate) fn validate(name: &str) -> Result<(), Error> {
    let bad = |reason: &'static str| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("the name is longer than 248 bytes (shmkit::MAX_NAME_LEN)");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("the name starts with '.' or '-'");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(Error::InvalidName {
            name: name.to_owned(),
            reason: match c {
                '/' | '\\' => "the name contains a path separator",
                '\0' => "the name contains a NUL byte",
                c if c.is_whitespace() => "the name contains white space",
                _ => "the name contains a character outside [A-Za-z0-9_.-]",
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        let longest = "x".repeat(MAX_NAME_LEN);
        for ok in [
            "a",
            "jobs",
            "orders.v2",
            "Q_1-x",
            "my-savings-account-arrived",
            &longest,
        ] {
            assert!(validate(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn refuses_bad_names_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("/", "separator"),
            ("a/b", "separator"),
            ("..", "starts with"),
            (".hidden", "starts with"),
            ("-rf", "starts with"),
            ("a\0b", "NUL"),
            ("a b", "white space"),
            ("tab\t", "white space"),
            ("é", "outside"),
            ("a*", "outside"),
        ];
        for (name, why) in cases {
            match validate(name) {
                Err(Error::InvalidName { reason, .. }) => {
                    assert!(reason.contains(why), "{name:?}: {reason}")
                }
                other => panic!("{name:?} gave {other:?}"),
            }
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(validate(&long), Err(Error::InvalidName { .. })));
    }
}
