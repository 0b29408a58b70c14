//! JSON as every tool writes it: serde_json's pretty form (two-space indent), except that every
//! character [`crate::validate`] calls hostile is written as a `\uXXXX` escape. serde_json
//! escapes only the C0 controls, `"` and `\`, so DEL, the C1 controls, U+2028/U+2029 and the
//! bidirectional controls in a document's free-form `extra` fields (which the read-time checks
//! leave alone, docs/ARCHITECTURE.md) would otherwise reach a node's copy of the document, a
//! report or a terminal raw. The escaped form is the same JSON value, so every reader sees the
//! same document; only what a person or a line-based tool sees changes.

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};
use std::io::{self, Write};

/// One of serde_json's formatters, with hostile characters escaped inside strings.
struct Escaping<F>(F);

impl<F: Formatter> Formatter for Escaping<F> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        text: &str,
    ) -> io::Result<()> {
        let mut plain = 0;
        for (at, c) in text.char_indices() {
            if crate::validate::is_hostile_char(c) {
                w.write_all(&text.as_bytes()[plain..at])?;
                // Every hostile character is in the Basic Multilingual Plane: one \u escape.
                write!(w, "\\u{:04x}", c as u32)?;
                plain = at + c.len_utf8();
            }
        }
        w.write_all(&text.as_bytes()[plain..])
    }

    // The rest is the inner formatter's layout, unchanged.
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Writes `value` as pretty JSON (no final newline) to `out`.
pub fn to_writer_pretty<W: Write>(out: W, value: &impl Serialize) -> serde_json::Result<()> {
    let mut serializer =
        serde_json::Serializer::with_formatter(out, Escaping(PrettyFormatter::new()));
    value.serialize(&mut serializer)
}

/// `value` as one line of JSON with a final newline (a stream of objects, one per line).
pub fn to_line(value: &impl Serialize) -> String {
    let mut bytes = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut bytes, Escaping(CompactFormatter));
    value
        .serialize(&mut serializer)
        .expect("a value the tools print always serializes");
    bytes.push(b'\n');
    String::from_utf8(bytes).expect("serde_json writes UTF-8")
}

/// `value` as pretty JSON with a final newline.
pub fn to_string_pretty(value: &impl Serialize) -> String {
    let mut bytes = Vec::new();
    to_writer_pretty(&mut bytes, value).expect("a value the tools print always serializes");
    bytes.push(b'\n');
    String::from_utf8(bytes).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn hostile_characters_are_escaped_and_read_back_the_same() {
        let value =
            json!({"note\u{7f}key": "a\u{2028}b\u{85}c\u{202e}d\té\n", "n": [1, {"x": null}]});
        let text = to_string_pretty(&value);
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' || ('\u{2028}'..='\u{202e}').contains(&c)),
            "{text:?}"
        );
        assert!(text.contains(r#""note\u007fkey""#), "{text}");
        assert!(text.contains(r#""a\u2028b\u0085c\u202ed\té\n""#), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }

    #[test]
    fn plain_values_print_as_serde_json_prints_them() {
        let value = json!({"a": [1, 2, {"b": "c"}], "d": {}, "e": [], "f": "ünïcode ✓"});
        let ours = to_string_pretty(&value);
        let theirs = serde_json::to_string_pretty(&value).unwrap() + "\n";
        assert_eq!(ours, theirs);
        let line = to_line(&value);
        assert_eq!(line, serde_json::to_string(&value).unwrap() + "\n");
        assert_eq!(to_line(&json!("\u{7f}")), "\"\\u007f\"\n");
    }
}
