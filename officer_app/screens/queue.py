"""Travellers waiting at this desk, the one waiting longest first."""
from __future__ import annotations

from datetime import datetime, timezone

from kivy.properties import StringProperty

from .. import wording
from ..desk import QueuedTraveller
from .base import DeskScreen


class OfficerQueueScreen(DeskScreen):
    summary = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.travellers: list[QueuedTraveller] = []

    def on_pre_enter(self, *_):
        self.show(self.app.travellers)
        self.app.refresh_queue()

    def show(self, travellers: list[QueuedTraveller]) -> None:
        self.travellers = list(travellers)
        now = datetime.now(timezone.utc)
        self.ids.list.data = [
            {
                "index": i,
                "owner": self,
                "name": t.name,
                "passport": f"Passport {t.passport} · {t.passport_country}",
                "waiting": wording.waiting(t.waited(now)),
                "forms": f"{wording.plural(len(t.form_ids), 'form')}, {wording.plural(t.line_count, 'line')}",
                "total": wording.money(t.total_cents),
                "rules": " · ".join(wording.rule(code) for code, _detail in t.rules),
            }
            for i, t in enumerate(self.travellers)
        ]
        updated = self.app.queue_updated_at
        stamp = wording.clock(datetime.fromtimestamp(updated, timezone.utc)) if updated else "--:--"
        self.summary = f"{len(self.travellers)} waiting · {stamp}"

    def open_traveller(self, index: int) -> None:
        if 0 <= index < len(self.travellers):
            self.app.open_traveller(self.travellers[index])


SCREEN = OfficerQueueScreen
