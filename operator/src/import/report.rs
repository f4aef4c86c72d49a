//! What `legate import` says about each input document: what it became (or
//! why it became nothing), and every field that was dropped or changed in
//! meaning on the way.

use std::fmt;

/// How a field fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoteKind {
    /// Legate does the same with another field or a default: said for the record.
    Changed,
    /// The field has no Legate counterpart: its effect is gone.
    Dropped,
}

impl fmt::Display for NoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoteKind::Changed => "changed",
            NoteKind::Dropped => "dropped",
        })
    }
}

/// One field of one input object that did not carry over unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    /// The Emissary field, as a path in the input (`spec.host_regex`).
    pub field: String,
    pub why: String,
}

/// What an input document became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Legate objects (`Kind namespace/name`), possibly none when Legate needs
    /// no object for it (a cleartext Host).
    Converted(Vec<String>),
    /// Nothing, for this reason.
    Refused(String),
}

/// The report of one input document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocReport {
    /// `file#n`: the file and the document's position in it (from 1).
    pub source: String,
    /// `Kind namespace/name` as the input names it.
    pub object: String,
    pub outcome: Outcome,
    pub notes: Vec<Note>,
}

impl DocReport {
    pub fn new(source: String, object: String) -> DocReport {
        DocReport {
            source,
            object,
            outcome: Outcome::Converted(Vec::new()),
            notes: Vec::new(),
        }
    }

    pub fn dropped(&mut self, field: impl Into<String>, why: impl Into<String>) {
        self.note(NoteKind::Dropped, field, why);
    }

    pub fn changed(&mut self, field: impl Into<String>, why: impl Into<String>) {
        self.note(NoteKind::Changed, field, why);
    }

    fn note(&mut self, kind: NoteKind, field: impl Into<String>, why: impl Into<String>) {
        self.notes.push(Note {
            kind,
            field: field.into(),
            why: why.into(),
        });
    }

    pub fn refused(&self) -> bool {
        matches!(self.outcome, Outcome::Refused(_))
    }
}

impl fmt::Display for DocReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.source, self.object)?;
        match &self.outcome {
            Outcome::Converted(objects) if objects.is_empty() => writeln!(f, "converted into no object")?,
            Outcome::Converted(objects) => writeln!(f, "converted into {}", objects.join(", "))?,
            Outcome::Refused(why) => writeln!(f, "refused: {why}")?,
        }
        for note in &self.notes {
            writeln!(f, "  {} {}: {}", note.kind, note.field, note.why)?;
        }
        Ok(())
    }
}

/// The whole report: one entry per document, then a summary line.
#[derive(Debug, Default)]
pub struct Report {
    pub docs: Vec<DocReport>,
}

impl Report {
    pub fn summary(&self) -> String {
        let refused = self.docs.iter().filter(|d| d.refused()).count();
        let converted = self.docs.len() - refused;
        let with_notes = self
            .docs
            .iter()
            .filter(|d| !d.refused() && !d.notes.is_empty())
            .count();
        format!(
            "{} documents: {converted} converted ({with_notes} with dropped or changed fields), {refused} refused",
            self.docs.len()
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for doc in &self.docs {
            write!(f, "{doc}")?;
        }
        writeln!(f, "{}", self.summary())
    }
}
