"""Travellers waiting at this desk, the one waiting longest first."""
from __future__ import annotations

from datetime import datetime, timezone

from kivy.properties import StringProperty

from .. import wording
from ..desk import QueuedTraveller
from ..wording import Phrase, _
from .base import DeskScreen


class OfficerQueueScreen(DeskScreen):
    summary = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.travellers: list[QueuedTraveller] = []

    def on_kv_post(self, base_widget):
        self.app.bind(language=lambda *_args: self.show(self.travellers))

    def on_pre_enter(self, *_args):
        self.show(self.app.travellers)
        self.app.refresh_queue()

    def show(self, travellers: list[QueuedTraveller]) -> None:
        self.travellers = list(travellers)
        now = datetime.now(timezone.utc)
        self.ids.list.data = [
            {
                "index": i,
                "owner": self,
                "language": self.app.language,
                "name": t.name,
                "passport": Phrase(_("Passport {number} · {country}"), number=t.passport, country=t.passport_country),
                "waiting": wording.waiting(t.waited(now)),
                "forms": Phrase.join(", ", [wording.plural(len(t.form_ids), _("{count} form"), _("{count} forms")),
                                            wording.plural(t.line_count, _("{count} line"), _("{count} lines"))]),
                "total": wording.money(t.total_cents),
                "rules": Phrase.join(" · ", [wording.rule(code) for code, _detail in t.rules]),
            }
            for i, t in enumerate(self.travellers)
        ]
        updated = self.app.queue_updated_at
        stamp = wording.clock(datetime.fromtimestamp(updated, timezone.utc)) if updated else "--:--"
        self.summary = Phrase(_("{count} waiting · {time}"), count=len(self.travellers), time=stamp)

    def open_traveller(self, index: int) -> None:
        if 0 <= index < len(self.travellers):
            self.app.open_traveller(self.travellers[index])


SCREEN = OfficerQueueScreen
