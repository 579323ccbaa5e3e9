"""This officer's decisions today, with search."""
from __future__ import annotations

from kivy.properties import StringProperty

from .. import wording
from ..desk import STATE_NAMES, HistoryEntry
from ..wording import Phrase, _
from .base import DeskScreen

LOOKS = {  # outcome -> (icon, tone)
    "validated": ("tick", "success"),
    "partially_validated": ("half", "warning"),
    "rejected": ("cross", "danger"),
}


class OfficerHistoryScreen(DeskScreen):
    summary = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.entries: list[HistoryEntry] = []
        self.shown: list[HistoryEntry] = []

    def on_kv_post(self, base_widget):
        self.app.bind(language=lambda *_args: self.search(self.ids.search.text))

    def on_pre_enter(self, *_args):
        self.summary = Phrase(_("Loading..."))
        self.app.load_history()

    def show(self, entries: list[HistoryEntry]) -> None:
        self.entries = entries
        self.search(self.ids.search.text)

    def search(self, query: str) -> None:
        language = self.app.language
        self.shown = [e for e in self.entries if e.matches(query, language)] if query.strip() else list(self.entries)
        self.ids.list.data = [
            {
                "index": i,
                "owner": self,
                "language": language,
                "time": wording.local_time(e.at),
                "form_id": e.form_id,
                "outcome": wording.outcome(e.outcome),
                "kind": "clock" if e.state == "waiting" else "cross" if e.state == "not_recorded"
                        else LOOKS.get(e.outcome, ("dot", "neutral"))[0],
                "tone": "warning" if e.state == "waiting" else "danger" if e.state == "not_recorded"
                        else LOOKS.get(e.outcome, ("dot", "neutral"))[1],
                "name": e.traveller_name or "",
                "state_text": STATE_NAMES[e.state] if e.state != "recorded" else e.detail,
            }
            for i, e in enumerate(self.shown)
        ]
        recorded = sum(1 for e in self.entries if e.state == "recorded")
        self.summary = wording.plural(recorded, _("{count} decision recorded today"),
                                      _("{count} decisions recorded today"))
        if query.strip():
            self.summary = Phrase.join(" · ", [self.summary, Phrase(_("{count} shown"), count=len(self.shown))])

    def open_entry(self, index: int) -> None:
        if 0 <= index < len(self.shown):
            entry = self.shown[index]
            if entry.state == "not_recorded":
                self.app.show_conflicts()
            else:
                self.app.find(entry.form_id, "id")


SCREEN = OfficerHistoryScreen
