"""The demo site's traffic: where its visits come from, what they cost, who calls. Pure data for
gateway/demo_history.py."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AGENTS",
    "BOT_AGENTS",
    "BROWSERS",
    "CALLER_AREAS",
    "CALLER_NAMES",
    "CHANNELS",
    "HOUR_WEIGHTS",
    "NEWSLETTER",
    "OFFICE_NUMBER",
    "SITE_URL",
    "SPAM_NAMES",
    "WEEKDAY_WEIGHTS",
    "Channel",
]

# A reserved .example host: nobody's real site.
SITE_URL = "https://www.demo-plumbing.example"


@dataclass(frozen=True)
class Channel:
    """One way visitors arrive: the URL tags and click id their landing URL carries, where they
    come from, how often they call, and what a day of it costs (0: unpaid)."""

    name: str
    share: float  # of the site's usual visits
    call_rate: float  # calls per visit, in business hours
    source: str = ""
    medium: str = ""
    campaign: str = ""
    click_id: str = ""  # the URL parameter the ad network adds: gclid, msclkid, fbclid, bd_vid
    terms: tuple[str, ...] = ("",)
    contents: tuple[str, ...] = ("",)
    referrers: tuple[str, ...] = ("",)
    landings: tuple[str, ...] = ("/",)
    daily_cost: float = 0.0  # USD


CHANNELS: tuple[Channel, ...] = (
    Channel(
        "google brand",
        0.10,
        0.12,
        "google",
        "cpc",
        "brand",
        "gclid",
        terms=("demo plumbing", "demo plumbing co", "demo plumbing san francisco"),
        referrers=("https://www.google.com/",),
        landings=("/",),
        daily_cost=18.0,
    ),
    Channel(
        "google generic",
        0.20,
        0.07,
        "google",
        "cpc",
        "generic",
        "gclid",
        terms=(
            "emergency plumber",
            "plumber near me",
            "water heater repair",
            "blocked drain",
            "leak detection",
        ),
        contents=("ad-a", "ad-b"),
        referrers=("https://www.google.com/",),
        landings=("/emergency-plumber/", "/water-heaters/", "/drain-cleaning/"),
        daily_cost=62.0,
    ),
    Channel(
        "bing",
        0.05,
        0.06,
        "bing",
        "cpc",
        "bing-generic",
        "msclkid",
        terms=("plumber near me", "emergency plumber", "water heater installation"),
        referrers=("https://www.bing.com/",),
        landings=("/emergency-plumber/", "/water-heaters/"),
        daily_cost=14.0,
    ),
    Channel(
        "facebook",
        0.10,
        0.02,
        "facebook",
        "paid_social",
        "spring-promo",
        "fbclid",
        contents=("video-a", "carousel-b"),
        referrers=("https://m.facebook.com/", "https://l.facebook.com/"),
        landings=("/offers/spring/",),
        daily_cost=25.0,
    ),
    Channel(
        "baidu",
        0.04,
        0.05,
        "baidu",
        "cpc",
        "百度-水管维修",
        "bd_vid",
        terms=("水管工", "热水器维修", "旧金山 水管"),
        referrers=("https://www.baidu.com/",),
        landings=("/zh/",),
        daily_cost=9.0,
    ),
    # Search engines' unpaid results: no tags, so stored with the referrer's host as source.
    Channel(
        "organic",
        0.25,
        0.05,
        referrers=("https://www.google.com/", "https://www.google.com/", "https://www.bing.com/"),
        landings=("/", "/water-heaters/", "/drain-cleaning/", "/blog/frozen-pipes/"),
    ),
    Channel("direct", 0.18, 0.06, landings=("/", "/", "/contact/")),
    Channel(
        "referral",
        0.08,
        0.05,
        referrers=(
            "https://www.yelp.com/biz/demo-plumbing-san-francisco",
            "https://nextdoor.com/pages/demo-plumbing/",
            "https://www.angi.com/companylist/us/ca/san-francisco/demo-plumbing.htm",
        ),
        landings=("/", "/reviews/"),
    ),
)

# A monthly e-mail: a burst of visits within an hour, the pool's busiest moments.
NEWSLETTER = Channel(
    "newsletter",
    0.0,
    0.04,
    "newsletter",
    "email",
    "monthly-tips",
    contents=("header-button", "footer-link"),
    landings=("/blog/frozen-pipes/", "/offers/spring/"),
)

# Visits by hour of the day (site's zone) and by weekday (Monday first).
HOUR_WEIGHTS = (
    0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.4, 0.8, 1.2, 1.5, 1.6, 1.6,
    1.5, 1.5, 1.5, 1.4, 1.3, 1.1, 0.9, 0.8, 0.7, 0.6, 0.4, 0.25,
)  # fmt: skip
WEEKDAY_WEIGHTS = (1.0, 1.05, 1.0, 1.0, 0.95, 0.7, 0.55)

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
# Crawlers the site's bot list knows: their visits are stored, never given a pool number.
BOT_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "AdsBot-Google-Mobile (+http://www.google.com/mobile/adsbot.html)",
)

# Callers' area codes, all in the fictional 555-01XX range (415 is the site's own).
CALLER_AREAS = ("510", "650", "408", "925", "707", "628", "669", "209", "831", "916", "530")
# The office's phone, for the test calls made when tracking was set up.
OFFICE_NUMBER = "+16505550199"
# Caller names as the carriers' CNAM gives them; '' when none came.
CALLER_NAMES = (
    "SMITH JOHN",
    "GARCIA MARIA",
    "NGUYEN LINH",
    "CHEN WEI",
    "JOHNSON ROBERT",
    "PATEL ANIKA",
    "KIM SOO",
    "BROWN EMILY",
    "LOPEZ CARLOS",
    "WILLIAMS DAVID",
    "TAYLOR SARAH",
    "O'BRIEN & SONS",
    "王伟",
    "WIRELESS CALLER",
    "WIRELESS CALLER",
    "SAN FRANCISCO CA",
    "OAKLAND CA",
    "",
    "",
)
SPAM_NAMES = ("SPAM RISK", "TELEMARKETER", "")
# (endpoint, weight) of the agents who answer in business hours; after hours the on-call phone.
AGENTS = (("PJSIP/alice", 0.45), ("PJSIP/bob", 0.35), ("PJSIP/carol", 0.2))
