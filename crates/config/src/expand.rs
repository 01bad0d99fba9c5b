//! Environment variable expansion in the config text, before it is parsed, as Litestream
//! does (Go's `os.Expand`): `${VAR}` and `$VAR` (letters, digits, `_`) become the
//! variable's value, an unset variable becomes the empty string, `$PID` is the process id,
//! `$$`, `$*`, `$#`, `$@`, `$!`, `$?`, `$-` and `$0`..`$9` are looked up as one-character
//! names (so normally vanish, as in Litestream), and a `$` followed by anything else is
//! kept as it is.
//!
//! One deliberate difference: where Go silently drops a malformed `${` (no closing brace,
//! or `${}`), walcast reports it with its line, since a dropped credential or path would
//! otherwise go unnoticed.
//!
//! This module never reads the process environment itself: the caller passes a lookup.

use crate::error::ConfigError;

/// The config text with variables expanded; `lookup` answers a variable's value.
pub fn expand_env(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(0) | None => {
                    let offset = text.len() - rest.len() + dollar;
                    let line = text[..offset].matches('\n').count() + 1;
                    return Err(ExpandError { line });
                }
                Some(end) => (&braced[..end], end + 2),
            }
        } else if after.starts_with(|c: char| "*#$@!?-".contains(c) || c.is_ascii_digit()) {
            // Go's special shell variables: one character, looked up (normally unset).
            (&after[..1], 1)
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..len], len)
        };
        if name.is_empty() {
            out.push('$');
        } else if name == "PID" {
            out.push_str(&std::process::id().to_string());
        } else {
            out.push_str(&lookup(name).unwrap_or_default());
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A `${` without a name and closing brace, at `line` (1-based).
#[derive(Debug, PartialEq, Eq)]
pub struct ExpandError {
    /// The line of the `$`.
    pub line: usize,
}

impl ExpandError {
    pub(crate) fn into_config_error(self, file: &str) -> ConfigError {
        ConfigError::Syntax {
            file: file.to_owned(),
            line: self.line as u64,
            column: 0,
            message: "`${` without a variable name and `}`; write ${NAME}".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "BUCKET" => Some("backups".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn braced_and_bare_variables_expand_like_litestream() {
        let out = expand_env("a: ${BUCKET}/$BUCKET-x $UNSET|${UNSET}|$EMPTY.", &env).unwrap();
        assert_eq!(out, "a: backups/backups-x ||.");
        assert_eq!(
            expand_env("cost: 5$ and $", &env).unwrap(),
            "cost: 5$ and $"
        );
        assert_eq!(expand_env("$-x $$y $1z", &env).unwrap(), "x y z");
        assert_eq!(expand_env("a $: b", &env).unwrap(), "a $: b");
        assert_eq!(
            expand_env("pid: $PID", &env).unwrap(),
            format!("pid: {}", std::process::id())
        );
        assert_eq!(expand_env("no variables", &env).unwrap(), "no variables");
    }

    #[test]
    fn a_malformed_brace_is_an_error_with_its_line() {
        assert_eq!(
            expand_env("a: 1\nb: ${OOPS\n", &env),
            Err(ExpandError { line: 2 })
        );
        assert_eq!(expand_env("a: ${}\n", &env), Err(ExpandError { line: 1 }));
    }
}
