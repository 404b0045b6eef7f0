//! Device class and bot flag from the user agent.
//!
//! Heuristics on the user-agent text (ASCII, case-insensitive):
//!
//! * bot: a word ending in `bot`, or a crawler, preview or HTTP-library
//!   token (`crawl`, `spider`, `facebookexternalhit`, `curl/`,
//!   `python-requests`, `headless`, …);
//! * tablet: `iPad`, `tablet`, Kindle/Silk, PlayBook, or Android without
//!   `Mobile` (Android phones send `Mobile`, tablets do not);
//! * mobile: `Mobi`, iPhone/iPod, Android, BlackBerry, Windows Phone, Opera
//!   Mini, KaiOS;
//! * desktop: anything else.
//!
//! iPadOS 13 and later send a desktop Safari user agent by default, so those
//! iPads count as desktop: the text alone cannot tell them apart.

use std::fmt;

use aho_corasick::{AhoCorasick, Input, MatchKind};

/// A device class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// A phone.
    Mobile,
    /// A tablet.
    Tablet,
    /// Anything else.
    Desktop,
}

impl Device {
    /// The lower-case name used in tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mobile => "mobile",
            Self::Tablet => "tablet",
            Self::Desktop => "desktop",
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The heuristics as regexes (ASCII, case-insensitive): the definition the
/// token table below implements, and what the tests check it against.
#[cfg(test)]
const BOT: &str = r"bot\b|crawl|spider|slurp|mediapartners|facebookexternalhit|embedly|preview|headless|phantomjs|lighthouse|pingdom|uptimerobot|python-requests|python-urllib|aiohttp|curl/|wget/|go-http-client|java/|okhttp|axios/|node-fetch|libwww|httpclient|scrapy|bytespider|petalbot";
#[cfg(test)]
const TABLET: &str = r"ipad|tablet|kindle|silk/|playbook|nexus (?:7|9|10)\b|sm-t\d";
#[cfg(test)]
const MOBILE: &str =
    r"mobi|iphone|ipod|android|blackberry|bb10|windows phone|opera mini|iemobile|webos|kaios";

/// What finding a token means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    Bot,
    /// A bot, if no word character follows (`bot\b`).
    BotWord,
    Tablet,
    /// A tablet, if no word character follows (`nexus 7\b`).
    TabletWord,
    /// A tablet, if a digit follows (`sm-t\d`).
    TabletDigit,
    Mobile,
    /// Mobile, and a tablet unless `mobile` is there too.
    Android,
    /// `mobile`, which makes Android a phone.
    MobileWord,
}

/// The tokens of [`BOT`], [`TABLET`] and [`MOBILE`], lower case, with the
/// conditions those regexes put after them; plus `mobile` for the Android
/// rule.
const TOKENS: &[(&str, Sign)] = &[
    ("bot", Sign::BotWord),
    ("crawl", Sign::Bot),
    ("spider", Sign::Bot),
    ("slurp", Sign::Bot),
    ("mediapartners", Sign::Bot),
    ("facebookexternalhit", Sign::Bot),
    ("embedly", Sign::Bot),
    ("preview", Sign::Bot),
    ("headless", Sign::Bot),
    ("phantomjs", Sign::Bot),
    ("lighthouse", Sign::Bot),
    ("pingdom", Sign::Bot),
    ("uptimerobot", Sign::Bot),
    ("python-requests", Sign::Bot),
    ("python-urllib", Sign::Bot),
    ("aiohttp", Sign::Bot),
    ("curl/", Sign::Bot),
    ("wget/", Sign::Bot),
    ("go-http-client", Sign::Bot),
    ("java/", Sign::Bot),
    ("okhttp", Sign::Bot),
    ("axios/", Sign::Bot),
    ("node-fetch", Sign::Bot),
    ("libwww", Sign::Bot),
    ("httpclient", Sign::Bot),
    ("scrapy", Sign::Bot),
    ("bytespider", Sign::Bot),
    ("petalbot", Sign::Bot),
    ("ipad", Sign::Tablet),
    ("tablet", Sign::Tablet),
    ("kindle", Sign::Tablet),
    ("silk/", Sign::Tablet),
    ("playbook", Sign::Tablet),
    ("nexus 7", Sign::TabletWord),
    ("nexus 9", Sign::TabletWord),
    ("nexus 10", Sign::TabletWord),
    ("sm-t", Sign::TabletDigit),
    ("mobi", Sign::Mobile),
    ("iphone", Sign::Mobile),
    ("ipod", Sign::Mobile),
    ("android", Sign::Android),
    ("blackberry", Sign::Mobile),
    ("bb10", Sign::Mobile),
    ("windows phone", Sign::Mobile),
    ("opera mini", Sign::Mobile),
    ("iemobile", Sign::Mobile),
    ("webos", Sign::Mobile),
    ("kaios", Sign::Mobile),
    ("mobile", Sign::MobileWord),
];

/// User agents up to this length are lower-cased on the stack.
const STACK_BYTES: usize = 512;

/// The user-agent heuristics, compiled.
///
/// The tokens are looked for all at once (Aho-Corasick with its SIMD
/// prefilter) in the user agent lower-cased once (ASCII only, which is what
/// the regexes' case-insensitivity with Unicode off means): three regex
/// searches, each over the whole user agent when nothing matches, cost
/// about twice as much, and this runs for every record. Each search gives
/// the longest token starting at the leftmost place where one starts, and
/// the next search begins one byte after that place, so every place where
/// a token starts is seen. A token is hidden only by a longer one starting
/// at the same place, which it is the beginning of: of the tokens here,
/// only `mobi` (by `mobile`, `MobileWord`, which implies it).
#[derive(Debug, Clone)]
pub(crate) struct DeviceClassifier {
    tokens: AhoCorasick,
}

impl DeviceClassifier {
    pub(crate) fn new() -> Result<Self, aho_corasick::BuildError> {
        let tokens = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(TOKENS.iter().map(|(token, _)| token))?;
        Ok(Self { tokens })
    }

    /// The device class and whether the agent is a bot; `None` for an empty
    /// user agent, which says nothing either way.
    pub(crate) fn classify(&self, user_agent: &str) -> Option<(Device, bool)> {
        let ua = user_agent.trim().as_bytes();
        if ua.is_empty() {
            return None;
        }
        let mut stack = [0u8; STACK_BYTES];
        let heap;
        let ua: &[u8] = match stack.get_mut(..ua.len()) {
            Some(lower) => {
                lower.copy_from_slice(ua);
                lower.make_ascii_lowercase();
                lower
            }
            None => {
                heap = ua.to_ascii_lowercase();
                &heap
            }
        };
        let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
        let (mut bot, mut tablet, mut mobile, mut android, mut mobile_word) =
            (false, false, false, false, false);
        let mut from = 0;
        while let Some(found) = self.tokens.find(Input::new(ua).range(from..)) {
            from = found.start() + 1;
            let next = ua.get(found.end());
            match TOKENS[found.pattern().as_usize()].1 {
                Sign::Bot => bot = true,
                Sign::BotWord => bot |= !next.is_some_and(word),
                Sign::Tablet => tablet = true,
                Sign::TabletWord => tablet |= !next.is_some_and(word),
                Sign::TabletDigit => tablet |= next.is_some_and(u8::is_ascii_digit),
                Sign::Mobile => mobile = true,
                Sign::Android => (mobile, android) = (true, true),
                Sign::MobileWord => (mobile, mobile_word) = (true, true),
            }
        }
        let device = if tablet || (android && !mobile_word) {
            Device::Tablet
        } else if mobile {
            Device::Mobile
        } else {
            Device::Desktop
        };
        Some((device, bot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";
    const ANDROID_PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36";
    const ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36";
    const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36";
    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    const GOOGLEBOT_PHONE: &str = "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    fn classify(ua: &str) -> Option<(Device, bool)> {
        static CLASSIFIER: std::sync::OnceLock<DeviceClassifier> = std::sync::OnceLock::new();
        CLASSIFIER
            .get_or_init(|| DeviceClassifier::new().unwrap())
            .classify(ua)
    }

    #[test]
    fn phones_tablets_and_desktops_are_told_apart() {
        assert_eq!(classify(IPHONE), Some((Device::Mobile, false)));
        assert_eq!(classify(ANDROID_PHONE), Some((Device::Mobile, false)));
        assert_eq!(classify(IPAD), Some((Device::Tablet, false)));
        assert_eq!(classify(ANDROID_TABLET), Some((Device::Tablet, false)));
        assert_eq!(classify(DESKTOP), Some((Device::Desktop, false)));
    }

    #[test]
    fn crawlers_and_http_libraries_are_bots() {
        assert_eq!(classify(GOOGLEBOT), Some((Device::Desktop, true)));
        assert_eq!(classify(GOOGLEBOT_PHONE), Some((Device::Mobile, true)));
        assert_eq!(classify("curl/8.5.0").map(|(_, bot)| bot), Some(true));
        assert_eq!(
            classify("python-requests/2.31").map(|(_, bot)| bot),
            Some(true)
        );
        assert_eq!(
            classify("facebookexternalhit/1.1").map(|(_, bot)| bot),
            Some(true)
        );
    }

    #[test]
    fn case_does_not_matter() {
        assert_eq!(
            classify(&IPHONE.to_ascii_uppercase()),
            Some((Device::Mobile, false))
        );
        assert_eq!(
            classify(&GOOGLEBOT.to_ascii_lowercase()),
            Some((Device::Desktop, true))
        );
        assert_eq!(
            classify(&ANDROID_TABLET.to_ascii_uppercase()),
            Some((Device::Tablet, false))
        );
        // Longer than the stack buffer: lower-cased on the heap.
        let long = format!(
            "{} {}",
            "x".repeat(STACK_BYTES),
            GOOGLEBOT.to_ascii_uppercase()
        );
        assert_eq!(classify(&long), Some((Device::Desktop, true)));
    }

    /// The heuristics' regexes, compiled once: bot, tablet, mobile and the
    /// word `mobile`.
    fn regexes() -> &'static [regex::bytes::Regex; 4] {
        static REGEXES: std::sync::OnceLock<[regex::bytes::Regex; 4]> = std::sync::OnceLock::new();
        REGEXES.get_or_init(|| {
            [BOT, TABLET, MOBILE, "mobile"].map(|p| crate::rules::ascii_regex(p, true).unwrap())
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5_000))]

        /// The token scan answers what the heuristics' regexes answer.
        #[test]
        fn the_token_scan_agrees_with_the_regexes(
            ua in "[ -~]{0,30}(bot|BoT|robot_|iPad|ANDROID|Mobile|mobi|nexus 7|Nexus 10|nexus 1|SM-T5|sm-t|Curl/|kindle|petalbot)?[ -~]{0,10}(bot|nexus 9|sm-tx|Android|mobile)?[ -~]{0,10}"
        ) {
            let [bot, tablet, mobile, mobile_word] = regexes();
            let raw = ua.trim().as_bytes();
            let expected = (!raw.is_empty()).then(|| {
                let android_tablet = raw.windows(7).any(|w| w.eq_ignore_ascii_case(b"android"))
                    && !mobile_word.is_match(raw);
                let device = if tablet.is_match(raw) || android_tablet {
                    Device::Tablet
                } else if mobile.is_match(raw) {
                    Device::Mobile
                } else {
                    Device::Desktop
                };
                (device, bot.is_match(raw))
            });
            proptest::prop_assert_eq!(classify(&ua), expected);
        }
    }

    #[test]
    fn an_empty_user_agent_says_nothing() {
        assert_eq!(classify("  "), None);
    }
}
