"""A decision the API did not record: usually another officer decided the
form first (409). Both decisions are shown; the officer acknowledges."""
from __future__ import annotations

from kivy.properties import StringProperty

from shared.decision_queue import RefusedDecision

from .. import wording
from ..wording import Phrase, _
from .base import DeskScreen


def describe(outcome: str, reason_code: str | None, note: str | None, lines: list[dict] | None) -> str:
    parts = [wording.outcome(outcome)]
    if reason_code:
        parts.append(Phrase(_("reason: {reason}"), reason=wording.reason(reason_code)))
    absent = [str(entry["line"]) for entry in lines or [] if not entry.get("present", True)]
    if absent:
        parts.append(Phrase(_("lines not present: {lines}"), lines=", ".join(absent)))
    elif lines and outcome != "rejected":
        parts.append(Phrase(_("all lines present")))
    if note:
        parts.append(Phrase(_("note: {note}"), note=note))
    return Phrase.join("\n", parts)


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
        self.count_text = Phrase(_("1 of {count}"), count=count) if count > 1 else ""
        if refused.conflict:
            self.heading = Phrase(_("Form {form_id} was already decided"), form_id=refused.form_id)
            self.explanation = Phrase(_("Another decision reached the tax-free system before yours; yours was "
                                        "not recorded. Check with the officer who decided it if they differ."))
            event = refused.recorded_instead
            if event is None:
                self.recorded_by = Phrase(_("Recorded decision"))
                self.recorded = Phrase(_("Loading it from the form's audit trail..."))
            else:
                data = event.get("data") or {}
                me = self.app.desk.officer
                who = wording.officer(event.get("actor", ""), me.actor if me else None)
                if who == "you":
                    who = Phrase(_("you, earlier or on another handheld"))
                self.recorded_by = Phrase(_("Recorded: by {officer} at {time}"), officer=who,
                                          time=wording.local_time(event.get("at")))
                self.recorded = describe(event["type"].removeprefix("form."), data.get("reason_code"),
                                         data.get("note"), data.get("lines"))
        else:
            self.heading = Phrase(_("Form {form_id}: decision refused"), form_id=refused.form_id)
            self.explanation = Phrase(_("The tax-free system refused the decision: {reason}"),
                                      reason=wording.problem(refused.code, refused.detail, form_id=refused.form_id))
            self.recorded_by = ""
            self.recorded = ""

    def acknowledge(self) -> None:
        self.app.acknowledge(self.refused)


SCREEN = OfficerConflictScreen
