//! Classifying where a visit came from.
//!
//! The order of the checks follows common web-analytics practice:
//!
//! 1. `paid`: the page URL carries an ad click id (`gclid`, `fbclid`,
//!    `msclkid`, …) or `utm_medium` names a paid medium (`cpc`, `ppc`,
//!    `paid`, `display`, …).
//! 2. `utm_medium` says `email`/`newsletter` (email), `social` (social),
//!    `organic` (search) or `referral` (referral); campaign tagging wins over
//!    the referrer because the sender set it on purpose.
//! 3. No referrer, one without a host, or one from the page's own site (or a
//!    listed internal host) gives `direct`: an internal click carries no
//!    source of its own.
//! 4. The referrer's host is looked up in the webmail, search and social
//!    lists, in that order (webmail first so `mail.yahoo.com` is not taken
//!    for Yahoo search).
//! 5. Any other referrer is a `referral`.
//!
//! Host lists match a domain and all its subdomains; an entry ending in `.*`
//! (such as `google.*`) also matches any country ending (`google.de`,
//! `google.co.uk`). The rules file can add entries to every list.

use std::borrow::Cow;
use std::fmt;

use regex::bytes::Regex;
use serde::Deserialize;

use super::glob::ascii_regex;
use super::url_parts::referrer_host;

/// Where a visit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Typed in, bookmarked, or an internal link.
    Direct,
    /// A search engine.
    Search,
    /// A social network.
    Social,
    /// An email or webmail link.
    Email,
    /// An ad click.
    Paid,
    /// Any other site.
    Referral,
}

impl Channel {
    /// The lower-case name used in tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Search => "search",
            Self::Social => "social",
            Self::Email => "email",
            Self::Paid => "paid",
            Self::Referral => "referral",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const SEARCH_HOSTS: &[&str] = &[
    "google.*",
    "bing.com",
    "search.yahoo.com",
    "yahoo.co.jp",
    "duckduckgo.com",
    "baidu.com",
    "yandex.*",
    "ya.ru",
    "ecosia.org",
    "ask.com",
    "naver.com",
    "seznam.cz",
    "qwant.com",
    "startpage.com",
    "search.brave.com",
    "so.com",
    "sogou.com",
    "com.google.android.googlequicksearchbox",
];

const SOCIAL_HOSTS: &[&str] = &[
    "facebook.com",
    "fb.com",
    "fb.me",
    "instagram.com",
    "t.co",
    "twitter.com",
    "x.com",
    "linkedin.com",
    "lnkd.in",
    "reddit.com",
    "pinterest.*",
    "youtube.com",
    "youtu.be",
    "tiktok.com",
    "snapchat.com",
    "tumblr.com",
    "vk.com",
    "threads.net",
    "quora.com",
    "whatsapp.com",
    "t.me",
    "telegram.org",
    "bsky.app",
    "mastodon.social",
    "news.ycombinator.com",
    "weibo.com",
    "com.facebook.katana",
    "com.twitter.android",
    "com.linkedin.android",
    "com.reddit.frontpage",
];

const EMAIL_HOSTS: &[&str] = &[
    "mail.google.com",
    "com.google.android.gm",
    "outlook.live.com",
    "outlook.office.com",
    "outlook.office365.com",
    "mail.yahoo.com",
    "mail.aol.com",
    "mail.proton.me",
    "mail.zoho.com",
    "mail.yandex.*",
    "webmail.*",
];

const PAID_PARAMETERS: &[&str] = &[
    "gclid",
    "gbraid",
    "wbraid",
    "dclid",
    "gclsrc",
    "fbclid",
    "msclkid",
    "ttclid",
    "twclid",
    "li_fat_id",
    "yclid",
    "epik",
    "sccid",
    "rdt_cid",
];

const PAID_MEDIUMS: &[&str] = &[
    "cpc",
    "ppc",
    "paid",
    "paidsearch",
    "paid_search",
    "paid-search",
    "paidsocial",
    "paid_social",
    "paid-social",
    "cpm",
    "cpv",
    "cpa",
    "display",
    "banner",
    "retargeting",
];

const EMAIL_MEDIUMS: &[&str] = &["email", "e-mail", "e_mail", "newsletter"];
const SOCIAL_MEDIUMS: &[&str] = &[
    "social",
    "social-network",
    "social_network",
    "social-media",
    "social_media",
    "sm",
];

/// The `channel` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelSpec {
    #[serde(default = "default_channel_tag")]
    pub(crate) tag: Option<String>,
    #[serde(default)]
    pub(crate) search_hosts: Vec<String>,
    #[serde(default)]
    pub(crate) social_hosts: Vec<String>,
    #[serde(default)]
    pub(crate) email_hosts: Vec<String>,
    #[serde(default)]
    pub(crate) internal_hosts: Vec<String>,
    #[serde(default)]
    pub(crate) paid_parameters: Vec<String>,
    #[serde(default)]
    pub(crate) paid_mediums: Vec<String>,
}

impl Default for ChannelSpec {
    fn default() -> Self {
        Self {
            tag: default_channel_tag(),
            search_hosts: Vec::new(),
            social_hosts: Vec::new(),
            email_hosts: Vec::new(),
            internal_hosts: Vec::new(),
            paid_parameters: Vec::new(),
            paid_mediums: Vec::new(),
        }
    }
}

fn default_channel_tag() -> Option<String> {
    Some("channel:{channel}".into())
}

/// Compiled channel lists.
#[derive(Debug, Clone)]
pub(crate) struct ChannelClassifier {
    search: Regex,
    social: Regex,
    email: Regex,
    internal: Option<Regex>,
    paid_parameters: Vec<String>,
    paid_mediums: Vec<String>,
}

impl ChannelClassifier {
    /// The built-in lists plus the rules file's additions. An error names the
    /// list entry (`channel.search_hosts[2]`).
    pub(crate) fn new(spec: &ChannelSpec) -> Result<Self, (String, String)> {
        Ok(Self {
            search: host_list("search_hosts", SEARCH_HOSTS, &spec.search_hosts)?,
            social: host_list("social_hosts", SOCIAL_HOSTS, &spec.social_hosts)?,
            email: host_list("email_hosts", EMAIL_HOSTS, &spec.email_hosts)?,
            internal: if spec.internal_hosts.is_empty() {
                None
            } else {
                Some(host_list("internal_hosts", &[], &spec.internal_hosts)?)
            },
            paid_parameters: lowered(PAID_PARAMETERS, &spec.paid_parameters),
            paid_mediums: lowered(PAID_MEDIUMS, &spec.paid_mediums),
        })
    }

    /// Classifies a visit to `page_host` with the page's decoded `query`
    /// pairs and the `referrer` as sent.
    pub(crate) fn classify(
        &self,
        page_host: Option<&str>,
        query: &[(Cow<'_, str>, Cow<'_, str>)],
        referrer: Option<&str>,
    ) -> Channel {
        let mut medium = None;
        for (name, value) in query {
            if self
                .paid_parameters
                .iter()
                .any(|p| name.eq_ignore_ascii_case(p))
            {
                return Channel::Paid;
            }
            if medium.is_none() && name == "utm_medium" {
                medium = Some(value.trim().to_ascii_lowercase());
            }
        }
        if let Some(medium) = medium.as_deref() {
            if self.paid_mediums.iter().any(|m| m == medium) {
                return Channel::Paid;
            }
            if EMAIL_MEDIUMS.contains(&medium) {
                return Channel::Email;
            }
            if SOCIAL_MEDIUMS.contains(&medium) {
                return Channel::Social;
            }
            match medium {
                "organic" => return Channel::Search,
                "referral" => return Channel::Referral,
                _ => {}
            }
        }
        let Some(host) = referrer.and_then(referrer_host) else {
            return Channel::Direct;
        };
        let bytes = host.as_bytes();
        if page_host.is_some_and(|page| same_site(page, &host))
            || self.internal.as_ref().is_some_and(|r| r.is_match(bytes))
        {
            Channel::Direct
        } else if self.email.is_match(bytes) {
            Channel::Email
        } else if self.search.is_match(bytes) {
            Channel::Search
        } else if self.social.is_match(bytes) {
            Channel::Social
        } else {
            Channel::Referral
        }
    }
}

fn same_site(page: &str, referrer: &str) -> bool {
    fn strip(host: &str) -> &str {
        host.trim_end_matches('.').trim_start_matches("www.")
    }
    strip(page).eq_ignore_ascii_case(strip(referrer))
}

fn lowered(builtin: &[&str], extra: &[String]) -> Vec<String> {
    builtin
        .iter()
        .map(|s| (*s).to_owned())
        .chain(extra.iter().map(|s| s.trim().to_ascii_lowercase()))
        .collect()
}

/// One regex for a host list: `(?:^|\.)(?:entry|entry…)$`.
///
/// Case-sensitive, because both sides are lower-cased before they meet (the
/// entries here, the referrer's host by `referrer_host`): a case-insensitive
/// regex took half as long again to compile, on every cold start.
fn host_list(name: &str, builtin: &[&str], extra: &[String]) -> Result<Regex, (String, String)> {
    let mut alternatives = Vec::with_capacity(builtin.len() + extra.len());
    for entry in builtin {
        alternatives.push(host_entry(entry).map_err(|e| (format!("built-in {name}"), e))?);
    }
    for (index, entry) in extra.iter().enumerate() {
        alternatives.push(host_entry(entry).map_err(|e| (format!("channel.{name}[{index}]"), e))?);
    }
    let pattern = format!("(?:^|\\.)(?:{})$", alternatives.join("|"));
    ascii_regex(&pattern, false).map_err(|e| (format!("channel.{name}"), e.to_string()))
}

fn host_entry(entry: &str) -> Result<String, String> {
    let entry = entry.trim().trim_start_matches("*.").to_ascii_lowercase();
    let (domain, any_ending) = match entry.strip_suffix(".*") {
        Some(domain) => (domain, true),
        None => (entry.as_str(), false),
    };
    if domain.is_empty()
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains(['*', '/', ':', ' '])
    {
        return Err(format!(
            "{entry:?} is not a host name (use `example.com`, or `example.*` for any country ending)"
        ));
    }
    let mut fragment = regex::escape(domain);
    if any_ending {
        fragment.push_str(r"\.[a-z]{2,3}(?:\.[a-z]{2})?");
    }
    Ok(fragment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifier() -> ChannelClassifier {
        ChannelClassifier::new(&ChannelSpec::default()).unwrap()
    }

    fn pairs(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        url::form_urlencoded::parse(query.as_bytes()).collect()
    }

    fn classify(query: &str, referrer: Option<&str>) -> Channel {
        classifier().classify(Some("www.shop.example"), &pairs(query), referrer)
    }

    #[test]
    fn no_referrer_is_direct() {
        assert_eq!(classify("", None), Channel::Direct);
        assert_eq!(classify("", Some("")), Channel::Direct);
        assert_eq!(classify("", Some("not a url at all")), Channel::Direct);
    }

    #[test]
    fn search_engines_are_recognised_in_any_country() {
        assert_eq!(
            classify("", Some("https://www.google.co.uk/")),
            Channel::Search
        );
        assert_eq!(
            classify("", Some("https://www.google.de/search?q=x")),
            Channel::Search
        );
        assert_eq!(
            classify("", Some("https://duckduckgo.com/")),
            Channel::Search
        );
        assert_eq!(
            classify(
                "",
                Some("android-app://com.google.android.googlequicksearchbox/")
            ),
            Channel::Search
        );
        assert_eq!(
            classify("", Some("https://google.evil.example/")),
            Channel::Referral
        );
    }

    #[test]
    fn host_lists_ignore_the_case_of_the_referrer_and_of_the_rules_file() {
        assert_eq!(
            classify("", Some("https://WWW.Google.CO.UK/")),
            Channel::Search
        );
        assert_eq!(classify("", Some("T.CO/abc")), Channel::Social);
        let spec = ChannelSpec {
            internal_hosts: vec!["Shop.Example.COM".into()],
            ..ChannelSpec::default()
        };
        let classifier = ChannelClassifier::new(&spec).unwrap();
        assert_eq!(
            classifier.classify(None, &[], Some("https://SHOP.example.com/x")),
            Channel::Direct
        );
    }

    #[test]
    fn social_networks_and_webmail_are_recognised() {
        assert_eq!(classify("", Some("https://t.co/abc")), Channel::Social);
        assert_eq!(
            classify("", Some("https://m.facebook.com/")),
            Channel::Social
        );
        assert_eq!(
            classify("", Some("https://mail.google.com/mail/u/0/")),
            Channel::Email
        );
        assert_eq!(
            classify("", Some("https://mail.yahoo.com/")),
            Channel::Email
        );
    }

    #[test]
    fn click_ids_and_paid_mediums_mean_paid_whatever_the_referrer() {
        assert_eq!(
            classify("gclid=abc", Some("https://www.google.com/")),
            Channel::Paid
        );
        assert_eq!(classify("fbclid=x", None), Channel::Paid);
        assert_eq!(
            classify("utm_medium=CPC&utm_source=bing", None),
            Channel::Paid
        );
    }

    #[test]
    fn utm_medium_beats_the_referrer() {
        assert_eq!(
            classify("utm_medium=email", Some("https://t.co/x")),
            Channel::Email
        );
        assert_eq!(classify("utm_medium=social", None), Channel::Social);
        assert_eq!(classify("utm_medium=organic", None), Channel::Search);
    }

    #[test]
    fn other_sites_are_referrals_and_own_pages_are_direct() {
        assert_eq!(
            classify("", Some("https://blog.other.example/post")),
            Channel::Referral
        );
        assert_eq!(classify("", Some("other.example/page")), Channel::Referral);
        assert_eq!(
            classify("", Some("https://shop.example/cart")),
            Channel::Direct
        );
    }

    #[test]
    fn the_rules_file_extends_the_lists() {
        let spec = ChannelSpec {
            search_hosts: vec!["kagi.com".into()],
            internal_hosts: vec!["checkout.example".into()],
            paid_parameters: vec!["PROMO_ID".into()],
            ..ChannelSpec::default()
        };
        let c = ChannelClassifier::new(&spec).unwrap();
        assert_eq!(
            c.classify(None, &[], Some("https://kagi.com/search")),
            Channel::Search
        );
        assert_eq!(
            c.classify(None, &[], Some("https://pay.checkout.example/")),
            Channel::Direct
        );
        assert_eq!(c.classify(None, &pairs("promo_id=7"), None), Channel::Paid);
    }

    #[test]
    fn malformed_host_entries_name_their_place() {
        let spec = ChannelSpec {
            social_hosts: vec!["ok.example".into(), "https://bad.example/".into()],
            ..ChannelSpec::default()
        };
        let (place, message) = ChannelClassifier::new(&spec).unwrap_err();
        assert_eq!(place, "channel.social_hosts[1]");
        assert!(message.contains("not a host name"), "{message}");
    }
}
