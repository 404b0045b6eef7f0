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

use regex::bytes::Regex;

use super::ascii_regex;

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

const BOT: &str = r"bot\b|crawl|spider|slurp|mediapartners|facebookexternalhit|embedly|preview|headless|phantomjs|lighthouse|pingdom|uptimerobot|python-requests|python-urllib|aiohttp|curl/|wget/|go-http-client|java/|okhttp|axios/|node-fetch|libwww|httpclient|scrapy|bytespider|petalbot";
const TABLET: &str = r"ipad|tablet|kindle|silk/|playbook|nexus (?:7|9|10)\b|sm-t\d";
const MOBILE: &str =
    r"mobi|iphone|ipod|android|blackberry|bb10|windows phone|opera mini|iemobile|webos|kaios";

/// Compiled user-agent patterns.
#[derive(Debug, Clone)]
pub(crate) struct DeviceClassifier {
    bot: Regex,
    tablet: Regex,
    mobile: Regex,
    mobile_word: Regex,
}

impl DeviceClassifier {
    pub(crate) fn new() -> Result<Self, regex::Error> {
        Ok(Self {
            bot: ascii_regex(BOT, true)?,
            tablet: ascii_regex(TABLET, true)?,
            mobile: ascii_regex(MOBILE, true)?,
            mobile_word: ascii_regex("mobile", true)?,
        })
    }

    /// The device class and whether the agent is a bot; `None` for an empty
    /// user agent, which says nothing either way.
    pub(crate) fn classify(&self, user_agent: &str) -> Option<(Device, bool)> {
        let ua = user_agent.trim().as_bytes();
        if ua.is_empty() {
            return None;
        }
        let bot = self.bot.is_match(ua);
        let android_tablet =
            || contains_ignore_case(ua, b"android") && !self.mobile_word.is_match(ua);
        let device = if self.tablet.is_match(ua) || android_tablet() {
            Device::Tablet
        } else if self.mobile.is_match(ua) {
            Device::Mobile
        } else {
            Device::Desktop
        };
        Some((device, bot))
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
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
        DeviceClassifier::new().unwrap().classify(ua)
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
    fn an_empty_user_agent_says_nothing() {
        assert_eq!(classify("  "), None);
    }
}
