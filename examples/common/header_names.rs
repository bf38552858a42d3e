//! How the example apps print header names: the spelling the documentation
//! uses, whatever case HTTP/1.1 delivered them in.

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
