//! The checks every JSON text from a client passes before serde sees it, the same for
//! WebSocket frames and REST bodies: how deeply it nests, and whether a string in it
//! holds U+0000.
//!
//! U+0000 is refused everywhere because PostgreSQL cannot store it in text at all, and a
//! rule that holds on one backend only would make the same request succeed or fail by
//! database. Refusing it at the edge, before anything is queued, keeps the three backends
//! alike and keeps such a value out of the writer's batches.

/// Why a JSON text was refused before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Brackets nest deeper than the limit (`invalid_json`).
    TooDeep,
    /// A string holds the escape `\u0000` (`invalid_input`).
    NulCharacter,
}

/// One linear scan, so a hostile 10,000-deep nest or a megabyte of escapes costs one pass
/// and no recursion. Raw control characters inside strings are not JSON at all; serde
/// refuses those, so only the escaped form needs looking for here.
pub fn precheck(text: &[u8], depth_max: usize) -> Result<(), Refusal> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut at = 0;
    while at < text.len() {
        let byte = text[at];
        at += 1;
        if in_string {
            match byte {
                b'\\' => {
                    // The escaped character is consumed with its backslash, so `\\u0000`
                    // (a backslash, then the text "u0000") is not mistaken for a NUL.
                    if text.get(at) == Some(&b'u') && text.get(at + 1..at + 5) == Some(b"0000") {
                        return Err(Refusal::NulCharacter);
                    }
                    at += 1;
                }
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > depth_max {
                    return Err(Refusal::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The message a client gets for a refusal.
pub fn explain(refusal: Refusal, depth_max: usize) -> String {
    match refusal {
        Refusal::TooDeep => format!("JSON nested deeper than {depth_max}"),
        Refusal::NulCharacter => "text may not contain the character U+0000".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_escape_anywhere_in_a_string_is_refused() {
        for text in [
            r#"{"text":"\u0000"}"#,
            r#"{"text":"abc\u0000def"}"#,
            r#"{"a\u0000":1}"#,
            r#"["x", "\u0000"]"#,
        ] {
            assert_eq!(
                precheck(text.as_bytes(), 8),
                Err(Refusal::NulCharacter),
                "{text}"
            );
        }
    }

    #[test]
    fn text_that_only_looks_like_a_nul_escape_is_kept() {
        for text in [
            r#"{"text":"\\u0000"}"#,
            r#"{"text":"\u00001"}"#.replace("\\u0000", "\\u0001").as_str(),
            r#"{"text":"u0000"}"#,
            r#"{"text":"\\\\u0000"}"#,
        ] {
            assert_eq!(precheck(text.as_bytes(), 8), Ok(()), "{text}");
        }
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_nesting() {
        assert_eq!(precheck(br#"["a\"[[[[[[[[[[", 1]"#, 2), Ok(()));
        assert_eq!(
            precheck("[".repeat(10_000).as_bytes(), 8),
            Err(Refusal::TooDeep)
        );
        assert_eq!(precheck(b"[[1]]", 2), Ok(()));
        assert_eq!(precheck(b"[[[1]]]", 2), Err(Refusal::TooDeep));
    }
}
