"""The kiosk's screens, one kv file each (loaded once, here).

kv holds the layout and bindings; the little behaviour there is lives in
these classes (filling result cards, the summary list).
"""
from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder
from kivy.properties import ListProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from .. import desk
from ..widgets import KIND_COLOURS, KioskButton, text_colour

HERE = Path(__file__).parent


class OutcomeCard(BoxLayout):
    """One outcome: colour band, icon, title, explanation."""

    kind = StringProperty(desk.VALIDATED)
    title = StringProperty("")
    body = StringProperty("")
    colour = ListProperty([0, 0, 0, 1])
    ink = ListProperty([1, 1, 1, 1])

    @classmethod
    def of(cls, card) -> "OutcomeCard":
        return cls(kind=card.kind, title=card.title, body=card.body,
                   colour=list(KIND_COLOURS.get(card.kind, KIND_COLOURS[desk.UNREADABLE])),
                   ink=list(text_colour(card.kind)))


class WelcomeScreen(Screen):
    languages = ObjectProperty(None)

    def on_kv_post(self, base_widget):
        from kivy.app import App

        app = App.get_running_app()
        for lang in app.languages:
            button = KioskButton(source_text=lang.native_name, fixed_language=lang.code, font_size="24sp",
                                 height="64dp")
            button.bind(on_release=lambda _b, code=lang.code: app.choose_language(code))
            self._mark(button, app.language)
            app.bind(language=lambda _app, chosen, b=button: self._mark(b, chosen))
            self.languages.add_widget(button)

    @staticmethod
    def _mark(button, chosen: str) -> None:
        """The chosen language's button stands out in colour (its name
        says which language it is, so colour is not the only cue)."""
        button.chosen = button.fixed_language == chosen
        button.background = (0.06, 0.50, 0.22, 1) if button.chosen else (0.12, 0.30, 0.55, 1)

    def language_button(self, code: str):
        return next(b for b in self.languages.children if b.fixed_language == code)


class ScanScreen(Screen):
    preview = ObjectProperty(None)


class ResultScreen(Screen):
    cards = ObjectProperty(None)

    def show(self, outcomes, wording) -> None:
        self.clear()
        for outcome in outcomes:
            self.cards.add_widget(OutcomeCard.of(wording.card(outcome, self._desk_location())))

    def clear(self) -> None:
        if self.cards is not None:
            self.cards.clear_widgets()

    @staticmethod
    def _desk_location():
        from kivy.app import App

        app = App.get_running_app()
        return getattr(app, "desk_location", None) or None

    @property
    def shown(self) -> list[OutcomeCard]:
        return list(reversed(self.cards.children))


class SummaryScreen(Screen):
    cards = ObjectProperty(None)

    def show(self, forms, wording) -> None:
        self.clear()
        for outcome in forms:
            card = wording.card(outcome, ResultScreen._desk_location())
            self.cards.add_widget(OutcomeCard.of(card))

    def clear(self) -> None:
        if self.cards is not None:
            self.cards.clear_widgets()

    @property
    def shown(self) -> list[OutcomeCard]:
        return list(reversed(self.cards.children))


class HelpScreen(Screen):
    back_to = StringProperty("welcome")


def masked(form_id: str | None) -> str:
    """A form number with its middle hidden: anyone at the kiosk can open
    this screen, and a whole number is half of what the status page asks
    for. The supervisors' dashboard shows it whole."""
    return f"{form_id[:2]}…{form_id[-4:]}" if form_id else "-"


class StaffScreen(Screen):
    """For staff, in English like the status badge: scans waiting to be
    sent, and the queued scans the API refused (form number masked, when,
    why), which also go to the supervisors' dashboard. No passport numbers."""

    back_to = StringProperty("welcome")
    # Deliberately not in the traveller's language (no catalog entry):
    # staff read this screen.
    title = StringProperty("Staff: offline queue")
    back_label = StringProperty("Back")
    summary = StringProperty("")
    refused_list = StringProperty("")

    def show(self, pending: int, refused: list[dict]) -> None:
        self.summary = (f"{pending} scan(s) waiting to be sent. "
                        f"{len(refused)} queued scan(s) refused by the API:")
        self.refused_list = "\n".join(
            f"{item['failed_at']}  {'passport' if item['kind'] == 'passport' else masked(item['form_id'])}"
            f"  scanned {item['scanned_at'] or '?'}  {item['code']}: {item['detail']}"
            + ("" if item["reported_at"] else "  (not yet reported)")
            for item in refused
        ) or "None."


for _kv in ("welcome", "scan", "result", "summary", "help", "staff"):
    Builder.load_file(str(HERE / f"{_kv}.kv"))
