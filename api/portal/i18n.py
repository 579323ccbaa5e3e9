"""Languages of the pages: English and Dutch for the portal and dashboard,
the kiosk's languages for the traveller status page.

Messages are looked up by their English text (as with gettext), so a
missing translation shows English rather than a key. Catalogs are Python
dicts in ``api/portal/catalog/<code>.py``: no compile step, and a test checks
that every message the templates use is translated.
"""
from __future__ import annotations

import gettext as _gettext
import importlib
import unicodedata
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import pycountry
from flask import Flask, current_app, g, request, session

from shared import countries

#: Languages of the retailer portal and the supervisor dashboard.
PORTAL_LANGUAGES = ("en", "nl")

#: Languages of the traveller status page: the kiosk's, each named in itself.
TRAVELLER_LANGUAGES = {
    "en": "English",
    "nl": "Nederlands",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "it": "Italiano",
    "zh": "中文（简体）",
    "ja": "日本語",
    "ko": "한국어",
    "ru": "Русский",
    "ar": "العربية",
    "tr": "Türkçe",
}
RIGHT_TO_LEFT = frozenset({"ar"})
# The lang attribute for each code (zh means simplified Chinese here).
HTML_LANG = {"zh": "zh-Hans"}


@lru_cache(maxsize=None)
def catalog(code: str) -> dict[str, str]:
    if code == "en":
        return {}
    return importlib.import_module(f"{__package__}.catalog.{code}").MESSAGES


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(
        lang=current_language, html_lang=html_lang, text_direction=text_direction,
        money=money, eur=eur_amount, eur_en=eur_plain, local_time=local_time, country_name=country_name,
        TRAVELLER_LANGUAGES=TRAVELLER_LANGUAGES, PORTAL_LANGUAGES=PORTAL_LANGUAGES,
    )


def select_language(allowed: tuple[str, ...] | None = None) -> str:
    """The language of this request: ``?lang=`` (remembered in the session),
    else the one remembered, else the browser's preference."""
    if allowed is None:
        allowed = tuple(TRAVELLER_LANGUAGES) if request.blueprint == "portal_status" else PORTAL_LANGUAGES
    asked = request.args.get("lang")
    if asked in allowed and session.get("lang") != asked:
        session["lang"] = asked
    code = session.get("lang")
    if code not in allowed:
        code = request.accept_languages.best_match(allowed) or "en"
    g.lang = code
    return code


def current_language() -> str:
    return g.get("lang", "en")


def html_lang() -> str:
    code = current_language()
    return HTML_LANG.get(code, code)


def text_direction() -> str:
    return "rtl" if current_language() in RIGHT_TO_LEFT else "ltr"


def gettext(message: str) -> str:
    """``message`` in the current language (English if not translated)."""
    return catalog(current_language()).get(message, message)


# --- numbers, dates, countries ---------------------------------------------

def eur_amount(cents: int | None) -> str:
    """An amount without the currency sign, as typed in an input:
    ``12345`` -> ``"123.45"`` (``"123,45"`` in Dutch)."""
    if cents is None:
        return ""
    euros, rest = divmod(abs(int(cents)), 100)
    sep = "," if current_language() == "nl" else "."
    return f"{'-' if cents < 0 else ''}{euros}{sep}{rest:02d}"


def eur_plain(cents: int) -> str:
    """An amount in the print view's English: ``123456`` -> ``"1,234.56"``."""
    euros, rest = divmod(abs(int(cents)), 100)
    return f"{'-' if cents < 0 else ''}{euros:,}.{rest:02d}"


def money(cents: int | None) -> str:
    """An amount for people: ``€1,234.56`` (English), ``€ 1.234,56`` (Dutch)."""
    if cents is None:
        return ""
    euros, rest = divmod(abs(int(cents)), 100)
    sign = "-" if cents < 0 else ""
    if current_language() == "nl":
        return f"€ {sign}{euros:,}".replace(",", ".") + f",{rest:02d}"
    return f"{sign}€{euros:,}.{rest:02d}"


def local_time(moment: datetime | None, with_seconds: bool = False) -> str:
    """A UTC instant as the member state's local date and time."""
    if moment is None:
        return ""
    zone = ZoneInfo(current_app.config["RULESET"].timezone)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def iso_date(day: date | None) -> str:
    return day.isoformat() if day else ""


@lru_cache(maxsize=None)
def _country_translation(code: str):
    if code == "en":
        return _gettext.NullTranslations()
    return _gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[code], fallback=True)


def country_name(code: str | None, language: str | None = None) -> str:
    """A country's short name in the page's language (pycountry's catalogs)."""
    if not code:
        return ""
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code
    translation = _country_translation(language or current_language())
    common = getattr(country, "common_name", None)
    if common:
        translated = translation.gettext(common)
        if translated != common or (language or current_language()) == "en":
            return translated
    return translation.gettext(country.name)


def _sort_key(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


@lru_cache(maxsize=None)
def country_options(language: str) -> tuple[tuple[str, str, bool], ...]:
    """(code, name, in the EU) for every country, sorted by name in ``language``."""
    options = [
        (c.alpha_2, country_name(c.alpha_2, language), countries.is_eu(c.alpha_2))
        for c in pycountry.countries
    ]
    return tuple(sorted(options, key=lambda o: _sort_key(o[1])))
