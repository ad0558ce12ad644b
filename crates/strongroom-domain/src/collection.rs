use crate::DomainError;
use crate::slug::truncate_for_message;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A collection's name inside a tenant, such as `customers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectionName(String);

impl CollectionName {
    pub const LENGTH_MAX: usize = 64;

    pub fn parse(name: &str) -> Result<Self, DomainError> {
        if is_identifier(name, Self::LENGTH_MAX, |b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
        }) {
            Ok(Self(name.to_owned()))
        } else {
            Err(DomainError::InvalidCollectionName {
                name: truncate_for_message(name),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The type a schema field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array,
    Any,
}

impl FieldType {
    fn is_scalar(self) -> bool {
        matches!(
            self,
            FieldType::String | FieldType::Integer | FieldType::Number | FieldType::Boolean
        )
    }

    fn accepts(self, value: &Value) -> bool {
        match self {
            FieldType::String => value.is_string(),
            FieldType::Integer => value.is_i64() || value.is_u64(),
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
            FieldType::Object => value.is_object(),
            FieldType::Array => value.is_array(),
            FieldType::Any => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Object => "object",
            FieldType::Array => "array",
            FieldType::Any => "any",
        }
    }
}

/// One declared field of a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default)]
    pub required: bool,
    /// Indexed fields can be used in `where.<field>=<value>` equality filters.
    #[serde(default)]
    pub indexed: bool,
}

/// A collection's optional schema. An empty schema accepts any JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionSchema {
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
    /// When false, a record with a field the schema does not declare is refused.
    #[serde(default = "default_additional_fields")]
    pub additional_fields: bool,
}

fn default_additional_fields() -> bool {
    true
}

impl Default for CollectionSchema {
    fn default() -> Self {
        Self {
            fields: BTreeMap::new(),
            additional_fields: true,
        }
    }
}

/// The canonical form of an indexed field's value, the input of a blind index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexedValue {
    pub field: String,
    pub canonical: String,
}

impl CollectionSchema {
    pub const FIELDS_MAX: usize = 256;
    pub const INDEXED_FIELDS_MAX: usize = 16;
    pub const FIELD_NAME_LENGTH_MAX: usize = 64;
    /// Deep enough for real documents, far below serde_json's parse limit, so a stored record
    /// (and its journal entry, one level deeper) always parses again.
    pub const NESTING_DEPTH_MAX: usize = 32;

    /// Checks the schema itself: field names, counts, and that only scalar fields are indexed.
    pub fn validate(&self) -> Result<(), DomainError> {
        let invalid = |reason: String| DomainError::InvalidSchema { reason };
        if self.fields.len() > Self::FIELDS_MAX {
            return Err(invalid(format!(
                "at most {} fields are allowed",
                Self::FIELDS_MAX
            )));
        }
        for (name, spec) in &self.fields {
            let valid_name = is_identifier(name, Self::FIELD_NAME_LENGTH_MAX, |b| {
                b.is_ascii_alphanumeric() || b == b'_'
            });
            if !valid_name {
                return Err(invalid(format!(
                    "field name {:?} must be 1 to {} characters a-z, A-Z, 0-9 and '_', starting with a letter",
                    truncate_for_message(name),
                    Self::FIELD_NAME_LENGTH_MAX
                )));
            }
            if spec.indexed && !spec.field_type.is_scalar() {
                return Err(invalid(format!(
                    "field {name:?} of type {} cannot be indexed: only string, integer, number and boolean fields can",
                    spec.field_type.name()
                )));
            }
        }
        let indexed_count = self.fields.values().filter(|spec| spec.indexed).count();
        if indexed_count > Self::INDEXED_FIELDS_MAX {
            return Err(invalid(format!(
                "at most {} fields can be indexed",
                Self::INDEXED_FIELDS_MAX
            )));
        }
        Ok(())
    }

    /// Checks a record body against the schema.
    pub fn check_record(&self, body: &Value) -> Result<(), DomainError> {
        let violation = |reason: String| DomainError::SchemaViolation { reason };
        let Some(object) = body.as_object() else {
            return Err(violation("a record must be a JSON object".to_owned()));
        };
        if nesting_depth(body) > Self::NESTING_DEPTH_MAX {
            return Err(violation(format!(
                "a record may nest objects and arrays at most {} levels deep",
                Self::NESTING_DEPTH_MAX
            )));
        }
        for (name, spec) in &self.fields {
            match object.get(name) {
                None | Some(Value::Null) if spec.required => {
                    return Err(violation(format!("required field {name:?} is missing")));
                }
                None | Some(Value::Null) => {}
                Some(value) if !spec.field_type.accepts(value) => {
                    return Err(violation(format!(
                        "field {name:?} must be of type {}",
                        spec.field_type.name()
                    )));
                }
                Some(_) => {}
            }
        }
        if !self.additional_fields
            && let Some(unknown) = object.keys().find(|key| !self.fields.contains_key(*key))
        {
            return Err(violation(format!(
                "field {:?} is not declared in the schema, which does not allow additional fields",
                truncate_for_message(unknown)
            )));
        }
        Ok(())
    }

    /// The canonical values of a record's indexed fields, in field order.
    pub fn indexed_values(&self, body: &Value) -> Vec<IndexedValue> {
        self.fields
            .iter()
            .filter(|(_, spec)| spec.indexed)
            .filter_map(|(field, _)| {
                let canonical = canonical_scalar(body.get(field)?)?;
                Some(IndexedValue {
                    field: field.clone(),
                    canonical,
                })
            })
            .collect()
    }

    /// Turns `where.<field>=<raw>` into the canonical value the index holds.
    pub fn filter_value(&self, field: &str, raw: &str) -> Result<IndexedValue, DomainError> {
        let invalid = |reason: String| DomainError::InvalidQuery {
            parameter: format!("where.{}", truncate_for_message(field)),
            reason,
        };
        let spec = self.fields.get(field).filter(|spec| spec.indexed).ok_or_else(|| {
            invalid("equality filters work only on fields declared with \"indexed\": true in the collection schema".to_owned())
        })?;
        let value = match spec.field_type {
            FieldType::String => Value::String(raw.to_owned()),
            FieldType::Boolean => match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(invalid("expected true or false".to_owned())),
            },
            FieldType::Integer => raw
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| invalid("expected an integer".to_owned()))?,
            FieldType::Number => raw
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| raw.parse::<u64>().map(Value::from))
                .ok()
                .or_else(|| {
                    raw.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                })
                .ok_or_else(|| invalid("expected a number".to_owned()))?,
            FieldType::Object | FieldType::Array | FieldType::Any => {
                return Err(invalid("this field type cannot be filtered".to_owned()));
            }
        };
        let canonical = canonical_scalar(&value)
            .ok_or_else(|| invalid("value cannot be filtered".to_owned()))?;
        Ok(IndexedValue {
            field: field.to_owned(),
            canonical,
        })
    }
}

/// One canonical spelling per scalar, so that `1`, `1.0` and the filter `1` meet in the index.
fn canonical_scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(format!("s:{text}")),
        Value::Bool(flag) => Some(format!("b:{flag}")),
        Value::Number(number) => {
            // Integers keep every digit (ids above 2^53 must not collide); a float with no
            // fraction meets the integer it equals, so 1 and 1.0 find each other.
            if let Some(integer) = number.as_i64() {
                return Some(format!("n:{integer}"));
            }
            if let Some(integer) = number.as_u64() {
                return Some(format!("n:{integer}"));
            }
            let float = number.as_f64()?;
            if float.fract() == 0.0 && float.abs() < 9.2e18 {
                Some(format!("n:{}", float as i64))
            } else {
                Some(format!("n:{float}"))
            }
        }
        _ => None,
    }
}

/// How deeply objects and arrays nest (a scalar is 0), computed without recursion.
fn nesting_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(members) => Box::new(members.values()),
            Value::Array(items) => Box::new(items.iter()),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    deepest
}

fn is_identifier(name: &str, length_max: usize, allowed: impl Fn(u8) -> bool) -> bool {
    (1..=length_max).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> CollectionSchema {
        serde_json::from_value(json!({
            "fields": {
                "email": {"type": "string", "required": true, "indexed": true},
                "age": {"type": "integer", "indexed": true},
                "score": {"type": "number", "indexed": true},
                "tags": {"type": "array"}
            },
            "additional_fields": false
        }))
        .unwrap()
    }

    #[test]
    fn checks_required_types_and_unknown_fields() {
        let schema = schema();
        schema.validate().unwrap();
        assert!(
            schema
                .check_record(&json!({"email": "a@b.c", "age": 3}))
                .is_ok()
        );
        assert!(
            schema
                .check_record(&json!({"age": 3}))
                .unwrap_err()
                .to_string()
                .contains("required field \"email\"")
        );
        assert!(
            schema
                .check_record(&json!({"email": 5}))
                .unwrap_err()
                .to_string()
                .contains("type string")
        );
        assert!(
            schema
                .check_record(&json!({"email": "x", "age": 1.5}))
                .is_err()
        );
        assert!(
            schema
                .check_record(&json!({"email": "x", "other": 1}))
                .unwrap_err()
                .to_string()
                .contains("not declared")
        );
        assert!(schema.check_record(&json!([1])).is_err());
    }

    #[test]
    fn refuses_indexing_non_scalars_and_bad_names() {
        let mut schema = schema();
        schema.fields.insert(
            "tags".into(),
            FieldSpec {
                field_type: FieldType::Array,
                required: false,
                indexed: true,
            },
        );
        assert!(schema.validate().is_err());
        let mut schema = CollectionSchema::default();
        schema.fields.insert(
            "1bad".into(),
            FieldSpec {
                field_type: FieldType::String,
                required: false,
                indexed: false,
            },
        );
        assert!(schema.validate().is_err());
    }

    #[test]
    fn filter_values_meet_indexed_values() {
        let schema = schema();
        let indexed = schema.indexed_values(&json!({"email": "a@b.c", "age": 30, "score": 2.0}));
        assert!(indexed.contains(&schema.filter_value("email", "a@b.c").unwrap()));
        assert!(indexed.contains(&schema.filter_value("age", "30").unwrap()));
        assert!(indexed.contains(&schema.filter_value("score", "2").unwrap()));
        assert!(schema.filter_value("tags", "x").is_err());
        assert!(schema.filter_value("nope", "x").is_err());
        assert!(schema.filter_value("age", "thirty").is_err());
    }

    #[test]
    fn large_integers_keep_every_digit_and_nesting_is_bounded() {
        let schema: CollectionSchema = serde_json::from_value(json!({"fields": {"id": {"type": "integer", "indexed": true}, "x": {"type": "number", "indexed": true}}})).unwrap();
        let first = schema.indexed_values(&json!({"id": 1_000_000_000_000_000_001i64}));
        let second = schema.indexed_values(&json!({"id": 1_000_000_000_000_000_002i64}));
        assert_ne!(
            first, second,
            "ids above 2^53 must not share an index entry"
        );
        assert!(first.contains(&schema.filter_value("id", "1000000000000000001").unwrap()));
        assert!(
            schema
                .indexed_values(&json!({"x": 18_446_744_073_709_551_615u64}))
                .contains(&schema.filter_value("x", "18446744073709551615").unwrap())
        );
        assert!(
            schema
                .indexed_values(&json!({"x": 2.0}))
                .contains(&schema.filter_value("x", "2").unwrap())
        );
        let mut deep = json!(1);
        for _ in 0..CollectionSchema::NESTING_DEPTH_MAX {
            deep = json!([deep]);
        }
        assert!(
            CollectionSchema::default()
                .check_record(&json!({"a": deep.clone()}))
                .is_err()
        );
        assert!(
            CollectionSchema::default()
                .check_record(&json!({"a": deep[0].clone()}))
                .is_ok()
        );
    }

    #[test]
    fn collection_names() {
        assert!(CollectionName::parse("customers_2").is_ok());
        for bad in ["", "Customers", "2x", "a-b", &"a".repeat(65)] {
            assert!(CollectionName::parse(bad).is_err());
        }
    }
}
