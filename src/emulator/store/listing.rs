//! Reading and updating objects in place for the bucket-level operations: a walk over a
//! bucket's keys in order (the listings), and changes to one version that make no new
//! version (ACL, restore state).

use std::ops::Bound;

use super::{Store, Version};
use crate::emulator::error::ApiError;
use crate::emulator::lock;

/// What a listing wants after seeing one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visit {
    /// The next key.
    Continue,
    /// The next key that does not start with this prefix (a delimiter rolled the key up into
    /// a common prefix, so the keys under it need not be read).
    SkipPrefix(String),
    /// Nothing more: the page is full.
    Stop,
}

impl Store {
    /// Calls `visit` with every key of `bucket` that starts with `prefix` and is within
    /// `from` (a marker: `Excluded` to start after it, `Included` to start at it), in byte
    /// order, with its versions (oldest first), while the bucket lock is held: `visit` must
    /// not call back into the store.
    pub fn scan(
        &self,
        bucket: &str,
        prefix: &str,
        from: Bound<&str>,
        mut visit: impl FnMut(&str, &[Version]) -> Visit,
    ) -> Result<(), ApiError> {
        let buckets = lock(&self.buckets);
        let b = buckets
            .get(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        let mut lower = match from {
            Bound::Excluded(marker) if marker >= prefix => Bound::Excluded(marker.to_owned()),
            Bound::Included(marker) if marker >= prefix => Bound::Included(marker.to_owned()),
            _ => Bound::Included(prefix.to_owned()),
        };
        let mut skipped: Option<String> = None;
        loop {
            let mut restart = None;
            let range = (lower.as_ref().map(String::as_str), Bound::Unbounded);
            for (key, entry) in b.objects.range::<str, _>(range) {
                if !key.starts_with(prefix) {
                    return Ok(());
                }
                if skipped.as_deref().is_some_and(|s| key.starts_with(s)) {
                    continue;
                }
                match visit(key, &entry.versions) {
                    Visit::Continue => {}
                    Visit::Stop => return Ok(()),
                    Visit::SkipPrefix(p) => {
                        restart = Some(p);
                        break;
                    }
                }
            }
            let Some(p) = restart else {
                return Ok(());
            };
            // Every key under `p` sorts before `p` + U+10FFFF except keys continuing with
            // that very character; the `skipped` check above drops those.
            lower = Bound::Excluded(format!("{p}{}", char::MAX));
            skipped = Some(p);
        }
    }

    /// Changes one version in place (the current one without `version_id`; a delete marker
    /// is NoSuchKey, as for a read) and persists it; `change` may refuse with an error, which
    /// leaves the version as it was. Returns the version as changed.
    pub fn update_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        change: impl FnOnce(&mut Version) -> Result<(), ApiError>,
    ) -> Result<Version, ApiError> {
        let mut buckets = lock(&self.buckets);
        let found = Self::find(&buckets, bucket, key, version_id)?
            .version_id
            .clone();
        let Some(entry) = buckets.get_mut(bucket).and_then(|b| b.objects.get_mut(key)) else {
            return Err(ApiError::no_such_key());
        };
        let before = entry.clone();
        let Some(v) = entry
            .versions
            .iter_mut()
            .rev()
            .find(|v| v.version_id == found)
        else {
            return Err(ApiError::no_such_key());
        };
        let updated = match change(v).map(|()| v.clone()) {
            Ok(updated) => updated,
            Err(e) => {
                *entry = before;
                return Err(e);
            }
        };
        let entry_now = entry.clone();
        if let Err(e) = self.persist(bucket, &entry_now) {
            *entry = before;
            return Err(e);
        }
        Ok(updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::store::Kind;

    fn store_with(keys: &[&str]) -> Store {
        let store = Store::in_memory();
        store.ensure_bucket("b", false).unwrap();
        for key in keys {
            store
                .put(
                    "b",
                    key,
                    Version::new(Kind::Symlink { target: "t".into() }),
                    None,
                    false,
                )
                .unwrap();
        }
        store
    }

    fn walk(store: &Store, prefix: &str, from: Bound<&str>, skip_under: &str) -> Vec<String> {
        let mut seen = Vec::new();
        store
            .scan("b", prefix, from, |key, _| {
                seen.push(key.to_owned());
                match key.strip_prefix(skip_under) {
                    Some(rest) if !skip_under.is_empty() && rest.contains('/') => {
                        let end = skip_under.len() + rest.find('/').unwrap_or(0) + 1;
                        Visit::SkipPrefix(key[..end].to_owned())
                    }
                    _ => Visit::Continue,
                }
            })
            .unwrap();
        seen
    }

    #[test]
    fn scan_orders_bounds_and_skips_prefixes() {
        let max = char::MAX;
        let under_max = format!("a/d/{max}x");
        let store = store_with(&["a/1", "a/d/x", "a/d/y", &under_max, "a/e", "b/1", "a"]);
        assert_eq!(
            walk(&store, "a/", Bound::Unbounded, ""),
            ["a/1", "a/d/x", "a/d/y", under_max.as_str(), "a/e"]
        );
        assert_eq!(
            walk(&store, "a/", Bound::Excluded("a/d/x"), ""),
            ["a/d/y", under_max.as_str(), "a/e"]
        );
        assert_eq!(
            walk(&store, "a/", Bound::Included("a/d/x"), ""),
            ["a/d/x", "a/d/y", under_max.as_str(), "a/e"]
        );
        // A marker before the prefix starts at the prefix.
        assert_eq!(walk(&store, "b/", Bound::Excluded("a"), ""), ["b/1"]);
        // Skipping a/d/ skips every key under it, even one past a/d/ + U+10FFFF.
        assert_eq!(
            walk(&store, "a/", Bound::Unbounded, "a/"),
            ["a/1", "a/d/x", "a/e"]
        );
        assert_eq!(
            store
                .scan("none", "", Bound::Unbounded, |_, _| Visit::Stop)
                .unwrap_err()
                .code,
            "NoSuchBucket"
        );
    }
}
