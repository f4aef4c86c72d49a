//! Reading an untyped Emissary object field by field: each field is taken
//! once, a value of the wrong type is reported (never guessed), and
//! whatever nobody took is reported as dropped when the reader finishes. That
//! is how `legate import` never drops a field silently.

use serde_json::{Map, Value};

use super::report::DocReport;

/// The not yet converted fields of one object (or of one nested object).
#[derive(Debug)]
pub struct Fields {
    /// Where these fields are in the input (`spec`, `spec.cors`).
    pub path: String,
    map: Map<String, Value>,
}

impl Fields {
    pub fn new(path: impl Into<String>, map: Map<String, Value>) -> Fields {
        Fields {
            path: path.into(),
            map,
        }
    }

    /// The fields of `value` (an object) at `path`; anything else is reported
    /// and read as no fields.
    pub fn of(path: impl Into<String>, value: Value, report: &mut DocReport) -> Fields {
        let path = path.into();
        match value {
            Value::Object(map) => Fields::new(path, map),
            Value::Null => Fields::new(path, Map::new()),
            other => {
                report.dropped(&path, format!("expected an object, found {}", kind_of(&other)));
                Fields::new(path, Map::new())
            }
        }
    }

    /// `path.key`, for notes.
    pub fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The names of the fields not taken yet.
    pub fn keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    #[cfg(test)]
    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// Takes a field as it is; a `null` is no field.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    /// Takes a string field (a number or boolean is read as its text, as
    /// Emissary's YAML loader does for string fields).
    pub fn string(&mut self, key: &str, report: &mut DocReport) -> Option<String> {
        match self.take(key)? {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                report.dropped(
                    self.at(key),
                    format!("expected a string, found {}", kind_of(&other)),
                );
                None
            }
        }
    }

    /// Takes a boolean field (also `"true"`/`"false"` strings, which
    /// Emissary accepts).
    pub fn boolean(&mut self, key: &str, report: &mut DocReport) -> Option<bool> {
        match self.take(key)? {
            Value::Bool(b) => Some(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            other => {
                report.dropped(
                    self.at(key),
                    format!("expected true or false, found {}", kind_of(&other)),
                );
                None
            }
        }
    }

    /// Takes an integer field (also a string of digits).
    pub fn integer(&mut self, key: &str, report: &mut DocReport) -> Option<i64> {
        let value = self.take(key)?;
        let number = match &value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if number.is_none() {
            report.dropped(
                self.at(key),
                format!("expected an integer, found {}", kind_of(&value)),
            );
        }
        number
    }

    /// Takes a list of strings; Emissary also accepts one comma-separated
    /// string for several of them.
    pub fn strings(&mut self, key: &str, report: &mut DocReport) -> Vec<String> {
        match self.take(key) {
            None => Vec::new(),
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s),
                        Value::Number(n) => out.push(n.to_string()),
                        other => report.dropped(
                            format!("{}[{i}]", self.at(key)),
                            format!("expected a string, found {}", kind_of(&other)),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                report.dropped(
                    self.at(key),
                    format!("expected a list of strings, found {}", kind_of(&other)),
                );
                Vec::new()
            }
        }
    }

    /// Takes a nested object as fields of its own.
    pub fn object(&mut self, key: &str, report: &mut DocReport) -> Option<Fields> {
        let path = self.at(key);
        let value = self.take(key)?;
        Some(Fields::of(path, value, report))
    }

    /// Takes a list of values.
    pub fn list(&mut self, key: &str, report: &mut DocReport) -> Vec<Value> {
        match self.take(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                report.dropped(
                    self.at(key),
                    format!("expected a list, found {}", kind_of(&other)),
                );
                Vec::new()
            }
        }
    }

    /// Takes a field that Legate has no use for, with the reason.
    pub fn drop(&mut self, key: &str, why: &str, report: &mut DocReport) {
        if self.take(key).is_some() {
            report.dropped(self.at(key), why);
        }
    }

    /// Like [`Fields::drop`], except that a value equal to `same` (the
    /// switched-off state, which is what Legate does anyway) is converted
    /// without a note.
    pub fn drop_unless(&mut self, key: &str, same: &Value, why: &str, report: &mut DocReport) {
        match self.take(key) {
            Some(value) if value == *same => {}
            Some(_) => report.dropped(self.at(key), why),
            None => {}
        }
    }

    /// Takes a field whose effect Legate has by another means, with how.
    pub fn changed(&mut self, key: &str, how: &str, report: &mut DocReport) {
        if self.take(key).is_some() {
            report.changed(self.at(key), how);
        }
    }

    /// Takes a field that carries no meaning for Legate (a conversion
    /// artefact of Emissary's own), without a note.
    pub fn ignore(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Reports every field nobody took: `what` names the kind for the reason.
    pub fn finish(&mut self, what: &str, report: &mut DocReport) {
        for (key, value) in std::mem::take(&mut self.map) {
            if value.is_null() {
                continue;
            }
            let field = if self.path.is_empty() {
                key
            } else {
                format!("{}.{key}", self.path)
            };
            report.dropped(
                field,
                format!("not a documented field of {what}; nothing in Legate reads it"),
            );
        }
    }
}

/// `a string`, `a list`…: for messages about a value of the wrong type.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A millisecond count (`timeout_ms: 3000`) as a Kubernetes duration
/// (`"3s"`); None for 0 or less, which Emissary reads as "no timeout" and
/// Legate cannot say.
pub fn millis(ms: i64) -> Option<String> {
    if ms <= 0 {
        None
    } else if ms % 1000 == 0 {
        Some(format!("{}s", ms / 1000))
    } else {
        Some(format!("{ms}ms"))
    }
}

/// Emissary's seconds strings (`"0.25s"`, `"86400"`, `"3s"`) as a Kubernetes
/// duration; None when it is not one.
pub fn seconds(text: &str) -> Option<String> {
    let text = text.trim();
    let candidate = if text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        format!("{text}s")
    } else {
        text.to_string()
    };
    match legate_crds::common::parse_duration(&candidate) {
        Ok(d) if !d.is_zero() => Some(candidate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> DocReport {
        DocReport::new("t#1".into(), "Mapping x".into())
    }

    #[test]
    fn fields_nobody_takes_are_reported_as_dropped() {
        let mut r = report();
        let Value::Object(map) = json!({ "prefix": "/a/", "flux": 1, "gone": null }) else {
            panic!("an object")
        };
        let mut fields = Fields::new("spec", map);
        assert_eq!(fields.string("prefix", &mut r).as_deref(), Some("/a/"));
        fields.finish("a Mapping", &mut r);
        assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
        assert_eq!(r.notes[0].field, "spec.flux");
    }

    #[test]
    fn wrong_types_are_reported_not_guessed() {
        let mut r = report();
        let Value::Object(map) = json!({ "weight": [1], "grpc": "maybe", "cors": 3 }) else {
            panic!("an object")
        };
        let mut fields = Fields::new("spec", map);
        assert_eq!(fields.integer("weight", &mut r), None);
        assert_eq!(fields.boolean("grpc", &mut r), None);
        assert!(fields.object("cors", &mut r).is_some());
        assert_eq!(r.notes.len(), 3, "{:?}", r.notes);
    }

    #[test]
    fn durations_convert_from_milliseconds_and_seconds() {
        assert_eq!(millis(3000).as_deref(), Some("3s"));
        assert_eq!(millis(250).as_deref(), Some("250ms"));
        assert_eq!(millis(0), None);
        assert_eq!(seconds("86400").as_deref(), Some("86400s"));
        assert_eq!(seconds("0.025s").as_deref(), Some("0.025s"));
        assert_eq!(seconds("soon"), None);
    }

    #[test]
    fn comma_separated_strings_are_lists() {
        let mut r = report();
        let Value::Object(map) = json!({ "origins": "https://a.example, https://b.example" }) else {
            panic!("an object")
        };
        let mut fields = Fields::new("spec.cors", map);
        assert_eq!(
            fields.strings("origins", &mut r),
            vec!["https://a.example", "https://b.example"]
        );
    }
}
