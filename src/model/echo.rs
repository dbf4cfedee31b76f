//! [`clip`]: the one bound on how much caller input is echoed back (in statuses) or written
//! out (in logs).
//!
//! Error messages and log fields quote what the caller sent so a mistake can be found, but a
//! caller may send megabytes: a 5,000-character bucket name quoted whole pushes a status past
//! the 16 KiB that gRPC allows for metadata (the client then sees `RESOURCE_EXHAUSTED`
//! instead of the error), and a 4 MiB name quoted in a log line costs 4 MiB per request.

use std::borrow::Cow;

/// At most `max_bytes` of `text` (plus a marker): text that fits is returned as it is; longer
/// text keeps its beginning and its end (where messages say what is wrong) around
/// `…[N bytes elided]…`. Cuts fall on character boundaries.
pub fn clip(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let head = floor_boundary(text, max_bytes / 2);
    let tail = ceil_boundary(text, text.len() - (max_bytes - head));
    let elided = tail - head;
    Cow::Owned(format!(
        "{}…[{elided} bytes elided]…{}",
        &text[..head],
        &text[tail..]
    ))
}

/// The largest character boundary at or before `index`.
fn floor_boundary(text: &str, index: usize) -> usize {
    (0..=index)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

/// The smallest character boundary at or after `index`.
fn ceil_boundary(text: &str, index: usize) -> usize {
    (index..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(clip("bucket", 6), "bucket");
        assert!(matches!(clip("bucket", 100), Cow::Borrowed(_)));
    }

    #[test]
    fn long_text_keeps_both_ends() {
        let text = format!("name \"{}\" is 5000 characters", "a".repeat(5000));
        let clipped = clip(&text, 64);
        assert!(clipped.starts_with("name \"aaaa"), "{clipped}");
        assert!(clipped.ends_with("\" is 5000 characters"), "{clipped}");
        assert!(clipped.contains(&format!("[{} bytes elided]", text.len() - 64)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn clipped_text_is_bounded_and_keeps_its_ends(text in "[a-z\u{e9}\u{20ac}\u{1d11e} \n]{0,300}", max in 0usize..200) {
            let clipped = clip(&text, max);
            if text.len() <= max {
                prop_assert_eq!(clipped.as_ref(), text.as_str());
            } else {
                // The kept bytes fit in `max`; the marker adds at most 40.
                prop_assert!(clipped.len() <= max + 40, "{} > {}", clipped.len(), max + 40);
                let (head, rest) = clipped.split_once('…').unwrap();
                let tail = rest.rsplit_once('…').unwrap().1;
                prop_assert!(text.starts_with(head));
                prop_assert!(text.ends_with(tail));
                prop_assert!(head.len() + tail.len() <= max);
            }
        }
    }
}
