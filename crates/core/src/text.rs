//! Text cut to a size: the response bodies and reasons hookrelay keeps or passes on are bounded in bytes, and a
//! cut must not split a character.

/// The longest start of `text` that is at most `max_bytes` long and ends between two characters.
pub fn prefix(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_between_two_characters() {
        assert_eq!(prefix("ok", 10), "ok");
        assert_eq!(prefix("ok", 1), "o");
        assert_eq!(prefix("ééé", 3), "é");
        assert_eq!(prefix("ééé", 4), "éé");
        assert_eq!(prefix("é", 1), "");
        assert_eq!(prefix("", 0), "");
    }
}
