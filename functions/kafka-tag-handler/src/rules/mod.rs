//! Tag rules: the file format, loading, and tagging a page visit.
//!
//! The rules come from a JSON file, compiled once at start-up. Without
//! `TAG_RULES_FILE` the function uses `rules/default.json`, which is built
//! into the binary. A file that cannot be read, parsed or compiled stops
//! start-up with an error that names the file and the place: the path in
//! the file (`rules[3].pth`) with a line and column for syntax, types and
//! unknown keys, a rule index (`rules[3]`) or list entry
//! (`channel.search_hosts[1]`) for patterns and templates. (YAML is not
//! read any more: its parser, libyaml translated to unsafe Rust, added
//! about 120 KB to the binary for what JSON says as well.)
//!
//! # Format
//!
//! ```json
//! {
//!   "rules": [
//!     {"tag": "section:blog", "path": "/blog/**"},
//!     {"tag": "lang:{lang}", "path_regex": "^/(?P<lang>[a-z]{2})(?:/|$)"},
//!     {"tag": "site:shop", "host": "shop.*"},
//!     {"tag": "site:{site}", "host_regex": "^(?P<site>[a-z]+)\\.example\\.com$"},
//!     {"tag": "campaign:{value}", "query": "utm_campaign"},
//!     {"tag": "from-newsletter", "query": "utm_source", "equals": "newsletter"}
//!   ],
//!   "channel": {
//!     "tag": "channel:{channel}",
//!     "search_hosts": [], "social_hosts": [], "email_hosts": [],
//!     "internal_hosts": [],
//!     "paid_parameters": [], "paid_mediums": []
//!   },
//!   "device": {"tag": "device:{device}", "bot_tag": "bot"}
//! }
//! ```
//!
//! Every section and key is optional. `rules` are the URL rules, applied in
//! order: `path` is a glob over the URL path, `path_regex` a regex whose
//! named groups fill the tag, `host`/`host_regex` the same over the host
//! (case-insensitive), `query` a parameter that must be present (one tag per
//! occurrence) and `equals` the value it must have. `channel` is the
//! referrer channel (`direct`, `search`, `social`, `email`, `paid`,
//! `referral`); its lists are added to the built-in ones, and
//! `internal_hosts` are your own sites, whose referrals count as direct.
//! `device` is the device class (`mobile`, `tablet`, `desktop`) and the bot
//! flag from the user agent. `"tag": null` (or `"bot_tag": null`) turns a
//! section's tag off.
//!
//! A URL rule has a `tag` and at least one condition; all of its conditions
//! must hold. `host` and `host_regex` exclude each other, as do `path` and
//! `path_regex`; `equals` needs `query`. Globs are described in [`glob`];
//! regexes use the `regex` crate's syntax, unanchored, with ASCII semantics
//! (`\d`, `\w` and `(?i)` are ASCII-only, which suits hosts, percent-encoded
//! paths and user agents). Paths are matched as they appear in the URL
//! (percent-encoded); query values are decoded.
//!
//! A template's `{value}` is the query parameter's decoded value, `{name}`
//! a named group of the rule's `path_regex` or `host_regex`. A placeholder
//! that comes out empty drops the tag (no `campaign:` tags). Unknown keys
//! anywhere in the file are errors, so a typo cannot silently disable a rule.

pub mod channel;
pub mod device;
pub(crate) mod glob;
mod template;
mod url_parts;

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use lambda_stream_kit::runtime_api::FunctionError;
use regex::bytes::{Regex, RegexSet};
use serde::Deserialize;

use channel::{ChannelClassifier, ChannelSpec};
use device::DeviceClassifier;
use glob::{ascii_regex, ascii_set};
use template::{Slot, Template};
use url_parts::UrlParts;

pub use channel::Channel;
pub use device::Device;

/// The default rules, built into the binary.
pub const DEFAULT_RULES: &str = include_str!("../../rules/default.json");

/// Where the rules come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesSource {
    /// The built-in `rules/default.json`.
    Embedded,
    /// A file named by `TAG_RULES_FILE`.
    File(PathBuf),
}

impl fmt::Display for RulesSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Embedded => f.write_str("built-in rules/default.json"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl From<RulesError> for FunctionError {
    fn from(error: RulesError) -> Self {
        FunctionError::new("Config.TagRules", error)
    }
}

/// Why the rules could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The file could not be read.
    #[error("cannot read rules file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not named `.json`. Rules files are JSON; a YAML file
    /// (the format of earlier versions) gets this error rather than a
    /// confusing JSON syntax error at line 1.
    #[error("rules file {path}: rules files are JSON and must be named .json")]
    Format {
        /// The file.
        path: String,
    },
    /// The text does not parse, or has the wrong shape. The message carries
    /// the path in the file (`rules[1].pth`), the line and the column.
    #[error("rules file {origin}: {message}")]
    Parse {
        /// The file.
        origin: String,
        /// The parser's message.
        message: String,
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
        /// 1-based column, when the parser knows it.
        column: Option<usize>,
    },
    /// A rule or list entry does not compile.
    #[error("rules file {origin}: {place}: {message}")]
    Rule {
        /// The file.
        origin: String,
        /// Which rule or entry, e.g. `rules[3] (tag "lang:{lang}")`.
        place: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rules: Vec<RuleSpec>,
    #[serde(default)]
    channel: ChannelSpec,
    #[serde(default)]
    device: DeviceSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    tag: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    host_regex: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    path_regex: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default, deserialize_with = "scalar_text")]
    equals: Option<String>,
}

/// Reads a string, number or boolean as text, so `"equals": 1` and
/// `"equals": true` mean what they say instead of failing on the JSON type.
fn scalar_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string, number or boolean")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(Text)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceSpec {
    #[serde(default = "default_device_tag")]
    tag: Option<String>,
    #[serde(default = "default_bot_tag")]
    bot_tag: Option<String>,
}

impl Default for DeviceSpec {
    fn default() -> Self {
        Self {
            tag: default_device_tag(),
            bot_tag: default_bot_tag(),
        }
    }
}

fn default_device_tag() -> Option<String> {
    Some("device:{device}".into())
}

fn default_bot_tag() -> Option<String> {
    Some("bot".into())
}

/// A compiled URL rule.
#[derive(Debug, Clone)]
struct UrlRule {
    tag: Template,
    /// The rule's host pattern: its index in the host set.
    host: Option<usize>,
    /// The rule's path pattern: its index in the path set.
    path: Option<usize>,
    /// The host regex again, when the tag reads its groups.
    host_groups: Option<Regex>,
    /// The path regex again, when the tag reads its groups.
    path_groups: Option<Regex>,
    query: Option<QueryCondition>,
}

#[derive(Debug, Clone)]
struct QueryCondition {
    name: String,
    equals: Option<String>,
}

/// The recognised fields of one page visit, what the tagger reads,
/// borrowed from the event where possible. [`crate::visit`] finds them in
/// an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageVisit<'a> {
    /// The page URL (absolute, or a path with an optional query).
    pub url: Cow<'a, str>,
    /// Where the visitor came from.
    pub referrer: Option<Cow<'a, str>>,
    /// The browser's user agent.
    pub user_agent: Option<Cow<'a, str>>,
    /// The visitor or session id (numbers as their text).
    pub visitor_id: Option<Cow<'a, str>>,
    /// The event time as sent (text or number).
    pub timestamp: Option<Cow<'a, str>>,
}

/// The compiled rules: everything needed to tag a page visit.
#[derive(Debug, Clone)]
pub struct Tagger {
    rules: Vec<UrlRule>,
    /// Host patterns of all rules, matched in one pass.
    hosts: Option<RegexSet>,
    /// Path patterns of all rules, matched in one pass.
    paths: Option<RegexSet>,
    channel: Option<(ChannelClassifier, Template)>,
    device: Option<DeviceClassifier>,
    device_tag: Option<Template>,
    bot_tag: Option<Template>,
}

impl Tagger {
    /// Loads and compiles the rules from `source`.
    pub fn load(source: &RulesSource) -> Result<Self, RulesError> {
        match source {
            RulesSource::Embedded => {
                Self::from_text(DEFAULT_RULES, "rules/default.json (built in)")
            }
            RulesSource::File(path) => {
                let shown = path.display().to_string();
                let is_json = path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json"));
                if !is_json {
                    return Err(RulesError::Format { path: shown });
                }
                let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
                    path: shown.clone(),
                    source,
                })?;
                Self::from_text(&text, &shown)
            }
        }
    }

    /// Compiles rules given as JSON text; `origin` names them in errors.
    pub fn from_text(text: &str, origin: &str) -> Result<Self, RulesError> {
        let parse_error = |message: String, e: &serde_json::Error| RulesError::Parse {
            origin: origin.to_owned(),
            message,
            line: Some(e.line()),
            column: Some(e.column()),
        };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let file: RulesFile = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // The root's path is ".", which says nothing.
            if path == "." {
                parse_error(inner.to_string(), &inner)
            } else {
                parse_error(format!("{path}: {inner}"), &inner)
            }
        })?;
        // Nothing but whitespace may follow the object.
        deserializer
            .end()
            .map_err(|e| parse_error(e.to_string(), &e))?;
        compile(file).map_err(|(place, message)| RulesError::Rule {
            origin: origin.to_owned(),
            place,
            message,
        })
    }

    /// The tags for `visit`, sorted and without duplicates.
    pub fn tags(&self, visit: &PageVisit<'_>) -> Vec<String> {
        self.tag_set(visit).iter().map(str::to_owned).collect()
    }

    /// The tags for `visit`, sorted and without duplicates, in one buffer
    /// (what [`Tagger::tags`] gives, without a `String` per tag).
    pub fn tag_set(&self, visit: &PageVisit<'_>) -> Tags {
        let mut tags = Tags::with_capacity(128, 8);
        let page = UrlParts::page(&visit.url);
        let host = page.as_ref().and_then(|p| p.host.as_deref());
        let query: Vec<(Cow<'_, str>, Cow<'_, str>)> = page
            .as_ref()
            .map(|p| p.query_pairs().collect())
            .unwrap_or_default();
        if let Some(page) = &page {
            self.url_tags(page, &query, &mut tags);
        }
        if let Some((classifier, template)) = &self.channel {
            let channel = classifier.classify(host, &query, visit.referrer.as_deref());
            tags.add(template, |_| Some(Cow::Borrowed(channel.as_str())));
        }
        if let Some(classifier) = &self.device {
            let found = visit
                .user_agent
                .as_deref()
                .and_then(|ua| classifier.classify(ua));
            if let Some((device, bot)) = found {
                if let Some(template) = &self.device_tag {
                    tags.add(template, |_| Some(Cow::Borrowed(device.as_str())));
                }
                if let (true, Some(template)) = (bot, &self.bot_tag) {
                    tags.add(template, |_| None);
                }
            }
        }
        tags.sort_and_dedup();
        tags
    }

    fn url_tags(
        &self,
        page: &UrlParts<'_>,
        query: &[(Cow<'_, str>, Cow<'_, str>)],
        tags: &mut Tags,
    ) {
        let host = page.host.as_deref().map(str::as_bytes);
        let path = page.path.as_bytes();
        // Without a host, no host pattern matches.
        let host_hits = match (&self.hosts, host) {
            (Some(set), Some(host)) => Some(set.matches(host)),
            _ => None,
        };
        let path_hits = self.paths.as_ref().map(|set| set.matches(path));
        let holds = |index: Option<usize>, hits: &Option<regex::bytes::SetMatches>| {
            index.is_none_or(|i| hits.as_ref().is_some_and(|hits| hits.matched(i)))
        };
        for rule in &self.rules {
            if !holds(rule.host, &host_hits) || !holds(rule.path, &path_hits) {
                continue;
            }
            let host_caps = rule
                .host_groups
                .as_ref()
                .zip(host)
                .and_then(|(r, h)| r.captures(h));
            let path_caps = rule.path_groups.as_ref().and_then(|r| r.captures(path));
            let group = |slot: &Slot| -> Option<Cow<'_, str>> {
                let (caps, name) = match slot {
                    Slot::HostGroup(name) => (host_caps.as_ref()?, name),
                    Slot::PathGroup(name) => (path_caps.as_ref()?, name),
                    _ => return None,
                };
                caps.name(name)
                    .map(|m| String::from_utf8_lossy(m.as_bytes()))
            };
            match &rule.query {
                None => tags.add(&rule.tag, group),
                Some(condition) => {
                    for (_, value) in query.iter().filter(|(name, value)| {
                        *name == condition.name
                            && condition.equals.as_deref().is_none_or(|e| e == value)
                    }) {
                        tags.add(&rule.tag, |slot| match slot {
                            Slot::Value => Some(Cow::Borrowed(value.as_ref())),
                            other => group(other),
                        });
                    }
                }
            }
        }
    }
}

/// The tags of one visit: their text in one buffer, so that tagging a
/// visit allocates twice rather than once per tag. [`Tagger::tag_set`]
/// gives them sorted (by their text) and without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    text: String,
    /// Where each tag is in `text`.
    spans: Vec<std::ops::Range<usize>>,
}

impl Tags {
    fn with_capacity(text: usize, tags: usize) -> Self {
        Self {
            text: String::with_capacity(text),
            spans: Vec::with_capacity(tags),
        }
    }

    /// Renders `template` as one more tag, unless a placeholder is empty.
    fn add<'a>(&mut self, template: &Template, lookup: impl Fn(&Slot) -> Option<Cow<'a, str>>) {
        let start = self.text.len();
        if template.render_into(&mut self.text, lookup) {
            self.spans.push(start..self.text.len());
        }
    }

    fn sort_and_dedup(&mut self) {
        let text = &self.text;
        self.spans
            .sort_unstable_by(|a, b| text[a.clone()].cmp(&text[b.clone()]));
        self.spans
            .dedup_by(|a, b| text[a.clone()] == text[b.clone()]);
    }

    /// The tags, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.spans.iter().map(|span| &self.text[span.clone()])
    }

    /// How many tags there are.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl serde::Serialize for Tags {
    /// A JSON array of strings.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

type Place = (String, String);

fn compile(file: RulesFile) -> Result<Tagger, Place> {
    let mut host_patterns = Vec::new();
    let mut path_patterns = Vec::new();
    let mut rules = Vec::with_capacity(file.rules.len());
    for (index, spec) in file.rules.into_iter().enumerate() {
        let place = format!("rules[{index}] (tag {:?})", spec.tag);
        let rule = compile_rule(spec, &mut host_patterns, &mut path_patterns)
            .map_err(|message| (place, message))?;
        rules.push(rule);
    }
    let set = |patterns: &[String], case_insensitive| {
        (!patterns.is_empty())
            .then(|| ascii_set(patterns, case_insensitive))
            .transpose()
            .map_err(|e| ("rules".to_owned(), e.to_string()))
    };
    let (hosts, paths) = (set(&host_patterns, true)?, set(&path_patterns, false)?);

    let channel = match &file.channel.tag {
        None => None,
        Some(text) => {
            let template =
                Template::parse(text, |name| (name == "channel").then_some(Slot::Channel))
                    .map_err(|e| ("channel.tag".to_owned(), e))?;
            Some((ChannelClassifier::new(&file.channel)?, template))
        }
    };
    let device_tag = file
        .device
        .tag
        .as_deref()
        .map(|text| Template::parse(text, |name| (name == "device").then_some(Slot::Device)))
        .transpose()
        .map_err(|e| ("device.tag".to_owned(), e))?;
    let bot_tag = file
        .device
        .bot_tag
        .as_deref()
        .map(|text| Template::parse(text, |_| None))
        .transpose()
        .map_err(|e| ("device.bot_tag".to_owned(), e))?;
    let device = if device_tag.is_some() || bot_tag.is_some() {
        Some(DeviceClassifier::new().map_err(|e| ("device".to_owned(), e.to_string()))?)
    } else {
        None
    };
    Ok(Tagger {
        rules,
        hosts,
        paths,
        channel,
        device,
        device_tag,
        bot_tag,
    })
}

fn compile_rule(
    spec: RuleSpec,
    host_patterns: &mut Vec<String>,
    path_patterns: &mut Vec<String>,
) -> Result<UrlRule, String> {
    let host = pattern(
        spec.host.as_deref(),
        spec.host_regex.as_deref(),
        '.',
        "host",
    )?;
    let path = pattern(
        spec.path.as_deref(),
        spec.path_regex.as_deref(),
        '/',
        "path",
    )?;
    if spec.equals.is_some() && spec.query.is_none() {
        return Err("`equals` needs `query`".into());
    }
    let query = match spec.query {
        Some(name) if name.trim().is_empty() => return Err("`query` is empty".into()),
        Some(name) => Some(QueryCondition {
            name: name.trim().to_owned(),
            equals: spec.equals,
        }),
        None => None,
    };
    if host.is_none() && path.is_none() && query.is_none() {
        return Err(
            "a rule needs at least one of host, host_regex, path, path_regex or query".into(),
        );
    }
    // Each pattern is checked on its own, so an error names its rule (the
    // shared set only says that one of its patterns is wrong).
    let groups = |pattern: &Option<String>, case_insensitive, what: &str| {
        pattern
            .as_deref()
            .map(|p| glob::group_names(p, case_insensitive))
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(|e| format!("{what} pattern: {e}"))
    };
    let host_names = groups(&host, true, "host")?;
    let path_names = groups(&path, false, "path")?;
    let has_query = query.is_some();
    let tag = Template::parse(&spec.tag, |name| {
        if name == "value" && has_query {
            Some(Slot::Value)
        } else if path_names.iter().any(|n| n == name) {
            Some(Slot::PathGroup(name.to_owned()))
        } else if host_names.iter().any(|n| n == name) {
            Some(Slot::HostGroup(name.to_owned()))
        } else {
            None
        }
    })?;
    let wants_host = tag.uses(|s| matches!(s, Slot::HostGroup(_)));
    let wants_path = tag.uses(|s| matches!(s, Slot::PathGroup(_)));
    let own_regex = |pattern: &Option<String>, wanted: bool, case_insensitive, what: &str| {
        pattern
            .as_deref()
            .filter(|_| wanted)
            .map(|p| ascii_regex(p, case_insensitive))
            .transpose()
            .map_err(|e| format!("{what} pattern: {e}"))
    };
    let host_groups = own_regex(&host, wants_host, true, "host")?;
    let path_groups = own_regex(&path, wants_path, false, "path")?;
    let index = |pattern: Option<String>, set: &mut Vec<String>| {
        pattern.map(|p| {
            set.push(p);
            set.len() - 1
        })
    };
    Ok(UrlRule {
        host: index(host, host_patterns),
        path: index(path, path_patterns),
        host_groups,
        path_groups,
        tag,
        query,
    })
}

/// The regex for a glob or regex condition.
fn pattern(
    glob: Option<&str>,
    regex: Option<&str>,
    separator: char,
    what: &str,
) -> Result<Option<String>, String> {
    match (glob, regex) {
        (Some(_), Some(_)) => Err(format!("use either `{what}` or `{what}_regex`, not both")),
        (Some(glob), None) => glob::to_regex(glob.trim(), separator)
            .map(Some)
            .map_err(|e| format!("{what} glob {glob:?}: {e}")),
        (None, Some(regex)) => Ok(Some(regex.to_owned())),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests;
