//! How the example apps print header names: the spelling the documentation
//! uses, whatever case HTTP/1.1 delivered them in.

use serde_json::{Map, Value};

/// Headers as one JSON object, names in their documented spelling;
/// repeated fields are combined as HTTP allows (RFC 9110 §5.3).
pub fn headers_json<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let name = display_name(name);
        let value = String::from_utf8_lossy(value).into_owned();
        match out.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                out.insert(name, Value::String(value));
            }
        }
    }
    Value::Object(out)
}

/// `cloudfront-viewer-cert-sha256` → `CloudFront-Viewer-Cert-SHA256`.
pub fn display_name(lowercase: &str) -> String {
    lowercase
        .split('-')
        .map(|word| match word {
            "cloudfront" => "CloudFront".to_string(),
            "sha256" | "pem" => word.to_ascii_uppercase(),
            _ => {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}
