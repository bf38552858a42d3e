//! Header profile names as they appear in configuration files.

#[allow(unused_imports)]
use super::*;

/// `HeaderProfile` in configuration files: `cloudfront`, `alb_verify`,
/// `alb_passthrough`, `rfc9440`, `xfcc`, `xfcc_sanitize`, `custom:<prefix>`.
impl std::str::FromStr for HeaderProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "cloudfront" => Self::CloudFront,
            "alb_verify" => Self::AlbVerify,
            "alb_passthrough" => Self::AlbPassthrough,
            "rfc9440" => Self::Rfc9440,
            "xfcc" => Self::EnvoyXfcc(XfccMode::SanitizeSet),
            "xfcc_sanitize" => Self::EnvoyXfcc(XfccMode::Sanitize),
            other => match other.strip_prefix("custom:") {
                Some(prefix) => Self::Custom {
                    prefix: prefix.to_string(),
                },
                None => {
                    return Err(format!(
                    "unknown header profile `{other}` (cloudfront, alb_verify, alb_passthrough, \
                         rfc9440, xfcc, xfcc_sanitize, custom:<prefix>)"
                ))
                }
            },
        })
    }
}

impl fmt::Display for HeaderProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CloudFront => f.write_str("cloudfront"),
            Self::AlbVerify => f.write_str("alb_verify"),
            Self::AlbPassthrough => f.write_str("alb_passthrough"),
            Self::Rfc9440 => f.write_str("rfc9440"),
            Self::EnvoyXfcc(XfccMode::SanitizeSet) => f.write_str("xfcc"),
            Self::EnvoyXfcc(XfccMode::Sanitize) => f.write_str("xfcc_sanitize"),
            Self::Custom { prefix } => write!(f, "custom:{prefix}"),
        }
    }
}

impl Serialize for HeaderProfile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HeaderProfile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
