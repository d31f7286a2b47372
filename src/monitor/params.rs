//! Query-string decoding shared by the endpoints, with nats-server's rules:
//! empty or absent means default, booleans as Go's `strconv.ParseBool`, and
//! anything else is a `MonitorError` (a 400), never a panic.

use std::collections::HashMap;

use super::MonitorError;

/// Decoded query parameters (the last value wins for a repeated key).
pub type QueryMap = HashMap<String, String>;

/// Non-empty value of `key`, if given.
pub(crate) fn get<'a>(q: &'a QueryMap, key: &str) -> Option<&'a str> {
    q.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// A non-negative integer, `default` when absent or empty.
pub(crate) fn usize_param(
    q: &QueryMap,
    key: &'static str,
    default: usize,
) -> Result<usize, MonitorError> {
    match get(q, key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| MonitorError::BadParam {
            param: key,
            value: v.to_string(),
            expected: "a non-negative integer",
        }),
    }
}

/// An optional unsigned 64-bit integer (a connection id).
pub(crate) fn u64_param(q: &QueryMap, key: &'static str) -> Result<Option<u64>, MonitorError> {
    get(q, key)
        .map(|v| {
            v.parse().map_err(|_| MonitorError::BadParam {
                param: key,
                value: v.to_string(),
                expected: "a non-negative integer",
            })
        })
        .transpose()
}

/// A boolean as Go's `strconv.ParseBool` reads it; `extra` values (such as
/// `detail`) also count as true. Absent or empty is false.
pub(crate) fn bool_param(
    q: &QueryMap,
    key: &'static str,
    extra: &[&str],
) -> Result<bool, MonitorError> {
    let Some(v) = get(q, key) else {
        return Ok(false);
    };
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ if extra.contains(&v) => Ok(true),
        _ => Err(MonitorError::BadParam {
            param: key,
            value: v.to_string(),
            expected: "a boolean (1, true, 0, false)",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> QueryMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn decodes_and_rejects() {
        let m = q(&[("limit", "5"), ("subs", "detail"), ("x", "-1"), ("e", "")]);
        assert_eq!(usize_param(&m, "limit", 1024), Ok(5));
        assert_eq!(usize_param(&m, "e", 7), Ok(7));
        assert!(usize_param(&m, "x", 0).is_err());
        assert_eq!(bool_param(&m, "subs", &["detail"]), Ok(true));
        assert!(bool_param(&m, "subs", &[]).is_err());
        assert_eq!(u64_param(&m, "cid"), Ok(None));
    }
}
