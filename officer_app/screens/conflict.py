"""A decision the API did not record: usually another officer decided the
form first (409). Both decisions are shown; the officer acknowledges."""
from __future__ import annotations

from kivy.properties import StringProperty

from shared.decision_queue import RefusedDecision

from .. import wording
from .base import DeskScreen


def describe(outcome: str, reason_code: str | None, note: str | None, lines: list[dict] | None) -> str:
    parts = [wording.outcome(outcome)]
    if reason_code:
        parts.append(f"reason: {wording.reason(reason_code)}")
    absent = [str(entry["line"]) for entry in lines or [] if not entry.get("present", True)]
    if absent:
        parts.append("lines not present: " + ", ".join(absent))
    elif lines and outcome != "rejected":
        parts.append("all lines present")
    if note:
        parts.append(f"note: {note}")
    return "\n".join(parts)


class OfficerConflictScreen(DeskScreen):
    heading = StringProperty("")
    explanation = StringProperty("")
    yours = StringProperty("")
    recorded = StringProperty("")
    recorded_by = StringProperty("")
    count_text = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.refused: RefusedDecision | None = None

    def show(self, refused: RefusedDecision, count: int) -> None:
        self.refused = refused
        body = refused.body
        self.yours = describe(body["outcome"], body.get("reason_code"), body.get("note"), body.get("lines"))
        self.count_text = f"1 of {count}" if count > 1 else ""
        if refused.conflict:
            self.heading = f"Form {refused.form_id} was already decided"
            self.explanation = ("Another decision reached the tax-free system before yours; yours was "
                                "not recorded. Check with the officer who decided it if they differ.")
            event = refused.recorded_instead
            if event is None:
                self.recorded_by = "Recorded decision"
                self.recorded = "Loading it from the form's audit trail..."
            else:
                data = event.get("data") or {}
                me = self.app.desk.officer
                who = wording.officer(event.get("actor", ""), me.actor if me else None)
                if who == "you":
                    who = "you, earlier or on another handheld"
                self.recorded_by = f"Recorded: by {who} at {wording.local_time(event.get('at'))}"
                self.recorded = describe(event["type"].removeprefix("form."), data.get("reason_code"),
                                         data.get("note"), data.get("lines"))
        else:
            self.heading = f"Form {refused.form_id}: decision refused"
            self.explanation = f"The tax-free system refused the decision: {refused.detail}"
            self.recorded_by = ""
            self.recorded = ""

    def acknowledge(self) -> None:
        self.app.acknowledge(self.refused)


SCREEN = OfficerConflictScreen
