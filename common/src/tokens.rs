//! Static bearer tokens, in the format of kube-apiserver's `--token-auth-file`:
//!
//! ```text
//! # comment
//! token,user,uid,"group1,group2,group3"
//! other-token,bob,bob-uid
//! ```
//!
//! One CSV record per line: token, user name, user UID, and optionally a
//! group list (a quoted field, groups separated by commas). Fields may be
//! quoted (`""` is a literal quote inside a quoted field); blank lines and
//! lines starting with `#` are skipped. As in kube-apiserver, a record with an
//! empty token is skipped and, of duplicate tokens, the last one wins (both
//! with a warning); fewer than three fields is an error.

use crate::tls::Identity;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// An error in a token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file line {line}: {message}")]
    Parse { line: usize, message: String },
}

/// One entry of a token file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub user: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl TokenEntry {
    /// The identity requests with this token get.
    pub fn identity(&self) -> Identity {
        Identity {
            user: self.user.clone(),
            groups: self.groups.clone(),
        }
    }
}

/// Authenticates bearer tokens against a static token file.
#[derive(Debug, Clone, Default)]
pub struct TokenAuthenticator {
    tokens: HashMap<String, TokenEntry>,
}

impl TokenAuthenticator {
    /// Reads and parses a token file.
    pub fn from_file(path: &Path) -> Result<TokenAuthenticator, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses the contents of a token file.
    pub fn parse(text: &str) -> Result<TokenAuthenticator, TokenFileError> {
        let mut tokens = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields =
                split_csv(trimmed).map_err(|message| TokenFileError::Parse { line, message })?;
            let [token, user, uid, rest @ ..] = fields.as_slice() else {
                return Err(TokenFileError::Parse {
                    line,
                    message: format!(
                        "need at least 3 columns (token, user name, user uid), found {}",
                        fields.len()
                    ),
                });
            };
            if token.is_empty() {
                tracing::warn!(line, "empty token in token file; skipping the record");
                continue;
            }
            let groups = rest
                .first()
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let entry = TokenEntry {
                user: user.clone(),
                uid: uid.clone(),
                groups,
            };
            if tokens.insert(token.clone(), entry).is_some() {
                tracing::warn!(line, "duplicate token in token file; the later record wins");
            }
        }
        Ok(TokenAuthenticator { tokens })
    }

    /// The identity of a bearer token, if the file has it.
    pub fn lookup(&self, token: &str) -> Option<Identity> {
        self.entry(token).map(TokenEntry::identity)
    }

    /// The full entry (with the user's UID) of a bearer token.
    pub fn entry(&self, token: &str) -> Option<&TokenEntry> {
        if token.is_empty() {
            return None;
        }
        self.tokens.get(token)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// Splits one CSV record (Go's encoding/csv rules, leading space trimmed).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".to_string()),
                }
            }
            // Only spaces may follow a closing quote before the separator.
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("unexpected {c:?} after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim_end().to_string());
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field.trim_end().to_string());
                        break;
                    }
                    Some('"') => return Err("bare \" in an unquoted field".to_string()),
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kube_apiserver_format() {
        let auth = TokenAuthenticator::parse(
            "# static tokens\n\
             \n\
             abc123,admin,uid-1,\"system:masters,ops\"\n\
             def456,bob,uid-2\n\
             ghi789, carol , uid-3 , dev\n\
             \"q,uoted\",\"dave \"\"d\"\"\",uid-4,\"\"\n",
        )
        .expect("parse");
        assert_eq!(auth.len(), 4);
        assert_eq!(
            auth.lookup("abc123"),
            Some(Identity {
                user: "admin".into(),
                groups: vec!["system:masters".into(), "ops".into()],
            })
        );
        assert_eq!(auth.entry("abc123").map(|e| e.uid.as_str()), Some("uid-1"));
        assert_eq!(
            auth.lookup("def456"),
            Some(Identity {
                user: "bob".into(),
                groups: vec![],
            })
        );
        assert_eq!(
            auth.lookup("ghi789"),
            Some(Identity {
                user: "carol".into(),
                groups: vec!["dev".into()],
            })
        );
        assert_eq!(
            auth.lookup("q,uoted").map(|i| i.user),
            Some("dave \"d\"".to_string())
        );
        assert_eq!(auth.lookup("nope"), None);
        assert_eq!(auth.lookup(""), None);
        assert_eq!(auth.lookup("abc12"), None);
    }

    #[test]
    fn errors_carry_line_numbers() {
        let err = TokenAuthenticator::parse("# c\ntok,user,uid\ntok2,user2\n").expect_err("short");
        match err {
            TokenFileError::Parse { line, ref message } => {
                assert_eq!(line, 3);
                assert!(message.contains("3 columns"), "{message}");
            }
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("line 3"), "{err}");

        let err = TokenAuthenticator::parse("a,b,c,\"unterminated\n").expect_err("quote");
        assert!(
            matches!(err, TokenFileError::Parse { line: 1, .. }),
            "{err}"
        );

        let err = TokenAuthenticator::parse("\n\na,b,c,\"x\"y\n").expect_err("after quote");
        assert!(
            matches!(err, TokenFileError::Parse { line: 3, .. }),
            "{err}"
        );

        let err = TokenAuthenticator::parse("a,b\"c,d\n").expect_err("bare quote");
        assert!(
            matches!(err, TokenFileError::Parse { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn empty_tokens_are_skipped_and_duplicates_keep_the_last() {
        let auth =
            TokenAuthenticator::parse(",nobody,uid-0\ndup,first,1\ndup,second,2\n").expect("parse");
        assert_eq!(auth.len(), 1);
        assert_eq!(auth.lookup("dup").map(|i| i.user), Some("second".into()));
        assert!(TokenAuthenticator::parse("").expect("empty").is_empty());
    }

    #[test]
    fn reads_files_and_reports_missing_ones() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("tokens.csv");
        std::fs::write(&path, "t0k3n,alice,u1,\"a,b\"\r\n").expect("write");
        let auth = TokenAuthenticator::from_file(&path).expect("read");
        assert_eq!(
            auth.lookup("t0k3n"),
            Some(Identity {
                user: "alice".into(),
                groups: vec!["a".into(), "b".into()],
            })
        );
        let err = TokenAuthenticator::from_file(&tmp.path().join("missing")).expect_err("missing");
        assert!(matches!(err, TokenFileError::Io { .. }));
    }
}
