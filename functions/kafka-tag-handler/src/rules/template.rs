//! Tag templates: literal text with `{name}` placeholders.
//!
//! Which names a template may use depends on where it stands (a query rule
//! offers `{value}`, a regex offers its named groups, the channel section
//! offers `{channel}`), so names are resolved once, when the rules are
//! compiled, and an unknown name stops start-up instead of producing odd
//! tags later.

use std::borrow::Cow;

/// Where a placeholder's text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The value of the query parameter a rule matched.
    Value,
    /// A named group of the rule's host regex.
    HostGroup(String),
    /// A named group of the rule's path regex.
    PathGroup(String),
    /// The referrer channel.
    Channel,
    /// The device class.
    Device,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Slot(Slot),
}

/// A compiled template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`, resolving each placeholder name with `resolve`.
    pub(crate) fn parse(
        text: &str,
        resolve: impl Fn(&str) -> Option<Slot>,
    ) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("the tag is empty".into());
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if rest[..open].contains('}') {
                return Err(format!("`}}` without a matching `{{` in {text:?}"));
            }
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("`{{` is never closed in {text:?}"))?;
            let name = after[..close].trim();
            let slot = resolve(name)
                .ok_or_else(|| format!("unknown placeholder {{{name}}} in {text:?}"))?;
            pieces.push(Piece::Slot(slot));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`}}` without a matching `{{` in {text:?}"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self { pieces })
    }

    /// Whether any placeholder reads `slot`-like data (used to skip work).
    pub(crate) fn uses(&self, wanted: impl Fn(&Slot) -> bool) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Slot(s) if wanted(s)))
    }

    /// The tag, or `None` when a placeholder has no value (or an empty one):
    /// a tag like `campaign:` says nothing, so it is left out.
    #[cfg(test)]
    pub(crate) fn render<'a>(
        &self,
        lookup: impl Fn(&Slot) -> Option<Cow<'a, str>>,
    ) -> Option<String> {
        let mut out = String::new();
        self.render_into(&mut out, lookup).then_some(out)
    }

    /// Appends the tag to `out` and says whether there is one; when a
    /// placeholder has no value, `out` is left as it was.
    pub(crate) fn render_into<'a>(
        &self,
        out: &mut String,
        lookup: impl Fn(&Slot) -> Option<Cow<'a, str>>,
    ) -> bool {
        let start = out.len();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Slot(slot) => match lookup(slot) {
                    Some(value) if !value.trim().is_empty() => out.push_str(value.trim()),
                    _ => {
                        out.truncate(start);
                        return false;
                    }
                },
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_only(name: &str) -> Option<Slot> {
        (name == "value").then_some(Slot::Value)
    }

    #[test]
    fn placeholders_are_filled_in() {
        let t = Template::parse("campaign:{value}", value_only).unwrap();
        assert_eq!(
            t.render(|_| Some("spring".into())).as_deref(),
            Some("campaign:spring")
        );
        let plain = Template::parse("landing", value_only).unwrap();
        assert_eq!(plain.render(|_| None).as_deref(), Some("landing"));
    }

    #[test]
    fn an_empty_value_gives_no_tag() {
        let t = Template::parse("campaign:{value}", value_only).unwrap();
        assert_eq!(t.render(|_| Some("  ".into())), None);
        assert_eq!(t.render(|_| None), None);
    }

    #[test]
    fn unknown_or_unbalanced_placeholders_are_rejected() {
        assert!(Template::parse("c:{campaign}", value_only)
            .unwrap_err()
            .contains("unknown placeholder {campaign}"));
        assert!(Template::parse("c:{value", value_only)
            .unwrap_err()
            .contains("never closed"));
        assert!(Template::parse("c:value}", value_only)
            .unwrap_err()
            .contains("without a matching"));
        assert!(Template::parse(" ", value_only)
            .unwrap_err()
            .contains("empty"));
    }
}
