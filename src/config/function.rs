//! `[policy]`: the connection function named in the file.

#[allow(unused_imports)]
use super::*;

/// The policy `[policy] js` names, bound to `policy.kvs_json` or else to
/// the deny list's store; `None` without `js`.
pub(super) fn file_policy(
    settings: &PolicySettings,
    deny_list: Option<&Arc<MemoryKeyValueStore>>,
) -> Result<Option<Arc<dyn ConnectionPolicy>>, ConfigError> {
    let Some(path) = &settings.js else {
        return Ok(None);
    };
    #[cfg(not(feature = "js"))]
    {
        let _ = (path, deny_list);
        Err(invalid(
            "policy.js",
            "JavaScript connection functions need the `js` feature",
        ))
    }
    #[cfg(feature = "js")]
    {
        use crate::policy::js::{FingerprintFormat, JsFunction, JsLimits};
        use crate::revocation::kvs::KeyValueStore;
        let fingerprint = match settings.fingerprint.as_str() {
            "colon_hex" => FingerprintFormat::ColonHex,
            "hex" => FingerprintFormat::Hex,
            "base64_url" => FingerprintFormat::Base64Url,
            other => {
                return Err(invalid(
                    "policy.fingerprint",
                    &format!("`{other}` is not colon_hex, hex or base64_url"),
                ))
            }
        };
        if settings.time_limit_us == 0 {
            return Err(invalid("policy.time_limit_us", "must be greater than 0"));
        }
        if settings.memory_limit_bytes < 256 << 10 {
            return Err(invalid(
                "policy.memory_limit_bytes",
                "must be at least 262144",
            ));
        }
        let limits = JsLimits {
            time_us: settings.time_limit_us,
            memory_bytes: settings.memory_limit_bytes,
            code_bytes: settings.code_limit_bytes,
            ..JsLimits::default()
        };
        let mut function = JsFunction::load(path, limits)?
            .fingerprint_format(fingerprint)
            .fresh_context_per_call(settings.fresh_context_per_call);
        let store: Option<Arc<dyn KeyValueStore>> = if settings.kvs_json.is_empty() {
            deny_list.map(|s| s.clone() as Arc<dyn KeyValueStore>)
        } else {
            let store = MemoryKeyValueStore::for_serial_numbers();
            for path in &settings.kvs_json {
                let bytes = read_bytes("policy KVS JSON", path, DENY_LIST_LIMIT)?;
                store
                    .import_kvs_json(&bytes, ImportOptions::default())
                    .map_err(|e| invalid("policy.kvs_json", &format!("{}: {e}", path.display())))?;
            }
            Some(Arc::new(store))
        };
        if let Some(store) = store {
            function = function.with_kvs(store);
        }
        Ok(Some(Arc::new(function)))
    }
}
