//! Globs for hosts and paths, turned into regular expressions.
//!
//! A glob matches the whole host or path. `*` stands for any run of
//! characters within one segment (segments are split by `.` in hosts and by
//! `/` in paths), `**` for any run across segments, `?` for one character
//! other than the separator, and `{a,b}` for either alternative (no nesting).
//! Everything else is literal. Converting to a regex ourselves keeps one
//! matching engine (and lets all patterns of a kind share one `RegexSet`).
//!
//! Most globs in practice are literal, or a literal with `**` at one end
//! (`/blog{,/**}`, `{m,mobile}.**`). Those are also compiled to a
//! [`LiteralGlob`], which compares bytes instead of running the regex
//! engine for every record; the regex is then left out of the set.

/// The anchored regex equivalent of `glob`, where `separator` ends a segment.
pub(crate) fn to_regex(glob: &str, separator: char) -> Result<String, String> {
    let not_separator = format!("[^{}]", regex::escape(&separator.to_string()));
    let mut out = String::with_capacity(glob.len() * 2 + 2);
    out.push('^');
    let mut chars = glob.chars().peekable();
    let mut in_braces = false;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(".*");
            }
            '*' => {
                out.push_str(&not_separator);
                out.push('*');
            }
            '?' => out.push_str(&not_separator),
            '{' if in_braces => return Err("nested `{` is not supported".into()),
            '{' => {
                in_braces = true;
                out.push_str("(?:");
            }
            ',' if in_braces => out.push('|'),
            '}' if in_braces => {
                in_braces = false;
                out.push(')');
            }
            '}' => return Err("`}` without a matching `{`".into()),
            other => {
                let mut buf = [0u8; 4];
                out.push_str(&regex::escape(other.encode_utf8(&mut buf)));
            }
        }
    }
    if in_braces {
        return Err("`{` is never closed".into());
    }
    out.push('$');
    Ok(out)
}

/// Most alternatives a brace expansion may give for [`LiteralGlob`]; a
/// glob with more is matched by its regex.
const MAX_ALTERNATIVES: usize = 16;

/// A glob whose every alternative (after expanding braces) is a literal,
/// or a literal prefix and suffix around one `**`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiteralGlob {
    alternatives: Vec<Shape>,
    case_insensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// The whole text.
    Exact(String),
    /// `prefix**suffix`.
    Around { prefix: String, suffix: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*` or `?`: something a byte comparison cannot do.
    Segment,
    /// `**`.
    Any,
}

impl LiteralGlob {
    /// The byte-comparing form of `glob`, when it has one. `None` for globs
    /// with `*` or `?`, more than one `**` in an alternative, too many
    /// alternatives, or a syntax error (which [`to_regex`] reports).
    pub(crate) fn new(glob: &str, case_insensitive: bool) -> Option<Self> {
        let mut alternatives = Vec::new();
        for tokens in expand(glob)? {
            if tokens.contains(&Token::Segment) {
                return None;
            }
            let text = |tokens: &[Token]| -> String {
                tokens
                    .iter()
                    .filter_map(|t| match t {
                        Token::Literal(c) => Some(*c),
                        _ => None,
                    })
                    .collect()
            };
            let shape = match tokens.iter().position(|t| *t == Token::Any) {
                None => Shape::Exact(text(&tokens)),
                Some(at) if !tokens[at + 1..].contains(&Token::Any) => Shape::Around {
                    prefix: text(&tokens[..at]),
                    suffix: text(&tokens[at + 1..]),
                },
                Some(_) => return None,
            };
            alternatives.push(shape);
        }
        Some(Self {
            alternatives,
            case_insensitive,
        })
    }

    /// Whether `text` matches, exactly as the glob's regex would: `**` is
    /// the regex `.*`, which does not cross a line break.
    pub(crate) fn is_match(&self, text: &[u8]) -> bool {
        // A plain loop rather than `==`: the literals are a few bytes long
        // and usually differ early, where a call to `memcmp` costs more
        // than the comparison.
        let eq = |a: &[u8], b: &[u8]| {
            a.len() == b.len()
                && match self.case_insensitive {
                    true => a.eq_ignore_ascii_case(b),
                    false => a.iter().zip(b).all(|(x, y)| x == y),
                }
        };
        self.alternatives.iter().any(|shape| match shape {
            Shape::Exact(literal) => eq(text, literal.as_bytes()),
            Shape::Around { prefix, suffix } => {
                let (prefix, suffix) = (prefix.as_bytes(), suffix.as_bytes());
                text.len() >= prefix.len() + suffix.len()
                    && eq(&text[..prefix.len()], prefix)
                    && eq(&text[text.len() - suffix.len()..], suffix)
                    && !text[prefix.len()..text.len() - suffix.len()].contains(&b'\n')
            }
        })
    }
}

/// The glob's alternatives after expanding braces, each a token list, read
/// the way [`to_regex`] reads the glob. `None` on a syntax error or more
/// than [`MAX_ALTERNATIVES`].
fn expand(glob: &str) -> Option<Vec<Vec<Token>>> {
    let mut done: Vec<Vec<Token>> = vec![Vec::new()];
    // The alternatives of the brace group being read.
    let mut group: Option<Vec<Vec<Token>>> = None;
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                Token::Any
            }
            '*' | '?' => Token::Segment,
            '{' if group.is_some() => return None,
            '{' => {
                group = Some(vec![Vec::new()]);
                continue;
            }
            ',' if group.is_some() => {
                group.as_mut()?.push(Vec::new());
                continue;
            }
            '}' => {
                let options = group.take()?;
                if done.len() * options.len() > MAX_ALTERNATIVES {
                    return None;
                }
                done = done
                    .iter()
                    .flat_map(|head| {
                        options
                            .iter()
                            .map(move |option| [head.as_slice(), option].concat())
                    })
                    .collect();
                continue;
            }
            other => Token::Literal(other),
        };
        match group.as_mut() {
            Some(options) => options.last_mut()?.push(token),
            None => done.iter_mut().for_each(|d| d.push(token)),
        }
    }
    group.is_none().then_some(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(glob: &str, separator: char, text: &str) -> bool {
        let pattern = to_regex(glob, separator).unwrap();
        regex::Regex::new(&pattern).unwrap().is_match(text)
    }

    #[test]
    fn a_single_star_stays_within_one_segment() {
        assert!(matches("/blog/*", '/', "/blog/first-post"));
        assert!(!matches("/blog/*", '/', "/blog/2024/first-post"));
        assert!(matches("*.example.com", '.', "shop.example.com"));
        assert!(!matches("*.example.com", '.', "a.shop.example.com"));
    }

    #[test]
    fn a_double_star_crosses_segments() {
        assert!(matches("/blog/**", '/', "/blog/2024/first-post"));
        assert!(matches("**.example.com", '.', "a.shop.example.com"));
        assert!(!matches("/blog/**", '/', "/blogs/x"));
    }

    #[test]
    fn braces_give_alternatives_and_the_rest_is_literal() {
        assert!(matches("/{docs,help}/?", '/', "/help/a"));
        assert!(!matches("/{docs,help}/?", '/', "/help/ab"));
        assert!(matches("/a+b(c).html", '/', "/a+b(c).html"));
        assert!(!matches("/a+b(c).html", '/', "/aab(c)xhtml"));
    }

    #[test]
    fn literal_globs_compare_bytes_and_others_are_left_to_the_regex() {
        let blog = LiteralGlob::new("/blog{,/**}", false).unwrap();
        assert!(blog.is_match(b"/blog") && blog.is_match(b"/blog/a/b"));
        assert!(!blog.is_match(b"/blogs") && !blog.is_match(b"/Blog"));
        let mobile = LiteralGlob::new("{m,mobile}.**", true).unwrap();
        assert!(mobile.is_match(b"m.shop.example") && mobile.is_match(b"MOBILE.x"));
        assert!(!mobile.is_match(b"mm.shop.example"));
        let around = LiteralGlob::new("/a/**.html", false).unwrap();
        assert!(around.is_match(b"/a/.html") && around.is_match(b"/a/b/c.html"));
        assert!(!around.is_match(b"/a.html"));
        for glob in ["/blog/*", "/p/?", "/**/x/**", "/{a,b", "*{*,b}"] {
            assert_eq!(LiteralGlob::new(glob, false), None, "{glob}");
        }
        let many = "{a,b}{a,b}{a,b}{a,b}{a,b}";
        assert_eq!(LiteralGlob::new(many, false), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5_000))]

        /// Wherever a glob has a byte-comparing form, it gives the same
        /// answer as the glob's regex (compiled as the rules compile it).
        #[test]
        fn literal_globs_match_what_their_regex_matches(
            glob in "([ab/.\\n]|\\*\\*|\\*|\\?|\\{|\\}|,){0,10}",
            texts in proptest::collection::vec("[abAB/.\\n]{0,8}", 1..8),
            case_insensitive: bool,
        ) {
            let (Ok(pattern), Some(literal)) =
                (to_regex(&glob, '/'), LiteralGlob::new(&glob, case_insensitive))
            else {
                return Ok(());
            };
            let regex = super::super::ascii_regex(&pattern, case_insensitive).unwrap();
            for text in texts {
                proptest::prop_assert_eq!(
                    literal.is_match(text.as_bytes()),
                    regex.is_match(text.as_bytes()),
                    "glob {:?}, text {:?}", glob, text
                );
            }
        }
    }

    #[test]
    fn unbalanced_braces_are_rejected() {
        assert!(to_regex("/{a,b", '/').unwrap_err().contains("never closed"));
        assert!(to_regex("/a}", '/')
            .unwrap_err()
            .contains("without a matching"));
        assert!(to_regex("/{a,{b}}", '/').unwrap_err().contains("nested"));
    }
}
