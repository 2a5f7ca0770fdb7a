//! JSON in and out of documents, for the box's HTTP surface.
//!
//! A JSON object's fields become the document's top-level fields: objects become maps, arrays
//! lists, strings, numbers, booleans and null become scalars. Setting a field replaces it;
//! fields not named are left alone, so two boxes setting different fields of one document
//! concurrently both keep their edit.

use automerge::transaction::{Transactable, Transaction};
use automerge::{AutoSerde, Automerge, ObjId, ObjType, ROOT, ScalarValue};
use serde_json::{Map, Value};

/// Deepest nesting accepted, counting the top-level object as 1.
pub const MAX_JSON_DEPTH: usize = 32;
/// Longest field name accepted, in bytes.
pub const MAX_FIELD_NAME_BYTES: usize = 256;

/// Why a JSON body cannot become document fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    #[error("the document body must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("the object sets no fields")]
    Empty,
    #[error("field name at {path} is {len} bytes; names must be 1 to {MAX_FIELD_NAME_BYTES}")]
    FieldName { path: String, len: usize },
    #[error("{path} nests deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep { path: String },
    #[error("number at {path} is outside the 64-bit range")]
    Number { path: String },
    #[error("document edit failed at {path}: {reason}")]
    Automerge { path: String, reason: String },
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks a body before any edit, so that a bad field leaves the document untouched.
pub fn check_fields(body: &Value) -> Result<&Map<String, Value>, JsonError> {
    let Value::Object(fields) = body else {
        return Err(JsonError::NotAnObject(kind(body)));
    };
    if fields.is_empty() {
        return Err(JsonError::Empty);
    }
    check_object(fields, "$", 1)?;
    Ok(fields)
}

fn check_object(fields: &Map<String, Value>, path: &str, depth: usize) -> Result<(), JsonError> {
    for (name, value) in fields {
        let child = format!("{path}.{name}");
        if name.is_empty() || name.len() > MAX_FIELD_NAME_BYTES {
            return Err(JsonError::FieldName {
                path: path.to_owned(),
                len: name.len(),
            });
        }
        check_value(value, &child, depth)?;
    }
    Ok(())
}

fn check_value(value: &Value, path: &str, depth: usize) -> Result<(), JsonError> {
    match value {
        Value::Object(fields) => {
            if depth >= MAX_JSON_DEPTH {
                return Err(JsonError::TooDeep {
                    path: path.to_owned(),
                });
            }
            check_object(fields, path, depth + 1)
        }
        Value::Array(items) => {
            if depth >= MAX_JSON_DEPTH {
                return Err(JsonError::TooDeep {
                    path: path.to_owned(),
                });
            }
            items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| check_value(item, &format!("{path}[{i}]"), depth + 1))
        }
        Value::Number(n)
            if n.as_i64().is_none() && n.as_u64().is_none() && n.as_f64().is_none() =>
        {
            Err(JsonError::Number {
                path: path.to_owned(),
            })
        }
        _ => Ok(()),
    }
}

/// Sets each field of `fields` at the document's top level. Call [`check_fields`] first.
pub fn set_fields(tx: &mut Transaction<'_>, fields: &Map<String, Value>) -> Result<(), JsonError> {
    for (name, value) in fields {
        put_value(tx, &ROOT, name, value).map_err(|err| JsonError::Automerge {
            path: format!("$.{name}"),
            reason: err.to_string(),
        })?;
    }
    Ok(())
}

fn put_value(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    name: &str,
    value: &Value,
) -> Result<(), automerge::AutomergeError> {
    match value {
        Value::Object(fields) => {
            let child = tx.put_object(obj, name, ObjType::Map)?;
            for (key, value) in fields {
                put_value(tx, &child, key, value)?;
            }
        }
        Value::Array(items) => {
            let child = tx.put_object(obj, name, ObjType::List)?;
            for (index, item) in items.iter().enumerate() {
                insert_value(tx, &child, index, item)?;
            }
        }
        scalar => tx.put(obj, name, to_scalar(scalar))?,
    }
    Ok(())
}

fn insert_value(
    tx: &mut Transaction<'_>,
    list: &ObjId,
    index: usize,
    value: &Value,
) -> Result<(), automerge::AutomergeError> {
    match value {
        Value::Object(fields) => {
            let child = tx.insert_object(list, index, ObjType::Map)?;
            for (key, value) in fields {
                put_value(tx, &child, key, value)?;
            }
        }
        Value::Array(items) => {
            let child = tx.insert_object(list, index, ObjType::List)?;
            for (i, item) in items.iter().enumerate() {
                insert_value(tx, &child, i, item)?;
            }
        }
        scalar => tx.insert(list, index, to_scalar(scalar))?,
    }
    Ok(())
}

fn to_scalar(value: &Value) -> ScalarValue {
    match value {
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => ScalarValue::Int(i),
            (None, Some(u), _) => ScalarValue::Uint(u),
            (None, None, Some(f)) => ScalarValue::F64(f),
            (None, None, None) => ScalarValue::Null,
        },
        Value::String(s) => ScalarValue::Str(s.as_str().into()),
        _ => ScalarValue::Null,
    }
}

/// The document as JSON (conflicting values show the one automerge picks as winner).
pub fn to_json(doc: &Automerge) -> Value {
    serde_json::to_value(AutoSerde::from(doc)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn apply(doc: &mut Automerge, body: Value) -> Result<(), JsonError> {
        let fields = check_fields(&body)?.clone();
        doc.transact(|tx| set_fields(tx, &fields))
            .map(|_| ())
            .map_err(|f| f.error)
    }

    #[test]
    fn fields_round_trip_through_a_document() {
        let mut doc = Automerge::new();
        let body = json!({"name": "Tàu cao tốc", "seats": 600, "ok": true, "tags": ["a", {"b": 1.5}], "n": null});
        apply(&mut doc, body.clone()).unwrap();
        assert_eq!(to_json(&doc), body);
    }

    #[test]
    fn unnamed_fields_are_kept() {
        let mut doc = Automerge::new();
        apply(&mut doc, json!({"a": 1, "b": 2})).unwrap();
        apply(&mut doc, json!({"b": 3})).unwrap();
        assert_eq!(to_json(&doc), json!({"a": 1, "b": 3}));
    }

    #[test]
    fn bad_bodies_name_what_is_wrong() {
        assert_eq!(
            check_fields(&json!([1])),
            Err(JsonError::NotAnObject("an array"))
        );
        assert_eq!(check_fields(&json!({})), Err(JsonError::Empty));
        assert!(matches!(
            check_fields(&json!({"": 1})),
            Err(JsonError::FieldName { .. })
        ));
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!({ "x": deep });
        }
        assert!(matches!(
            check_fields(&deep),
            Err(JsonError::TooDeep { .. })
        ));
    }
}
