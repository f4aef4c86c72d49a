//! The page's HTML, by hand: an escaper that every piece of text goes
//! through (object names, messages, paths and header values are user input)
//! and the frame every page shares.

use std::fmt::{self, Display, Write};

/// Text made safe to put between tags or inside a quoted attribute.
pub struct Escaped<'a>(pub &'a str);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            let entity = match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            };
            f.write_str(entity)?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// Shorthand for [`Escaped`].
pub fn esc(text: &str) -> Escaped<'_> {
    Escaped(text)
}

/// Plain and legible: a page read while something is on fire, in a
/// terminal's browser or a screenshot in a ticket. No script.
const STYLE: &str = "\
body{font-family:sans-serif;margin:1.5em;color:#1b1b1b;background:#fff}\
h1{font-size:1.4em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}\
h3{font-size:1em;margin-bottom:.3em}\
table{border-collapse:collapse;margin:.3em 0 1em}\
caption{text-align:left;font-weight:bold;padding:.2em 0}\
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}\
code,pre{font-family:monospace;font-size:.95em}\
pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap;overflow-wrap:anywhere}\
.True{color:#116611}.False{color:#b00020;font-weight:bold}.Unknown{color:#7a5c00}\
.muted{color:#666}";

/// A whole document around `body`.
pub fn document(title: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1024);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        esc(title)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped_and_the_rest_is_kept() {
        assert_eq!(
            esc("<script>alert(\"x\" & 'y')</script> é").to_string(),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt; é"
        );
        assert_eq!(esc("plain").to_string(), "plain");
    }
}
