"""The confirmation step: exactly what will be sent, then send it."""
from __future__ import annotations

from kivy.factory import Factory
from kivy.properties import BooleanProperty, StringProperty

from .. import wording
from ..desk import Draft
from ..wording import Code, Phrase, _
from .base import DeskScreen

OUTCOME_LOOKS = {  # icon, tone
    "validated": ("tick", "success"),
    "partially_validated": ("half", "warning"),
    "rejected": ("cross", "danger"),
}


class OfficerConfirmScreen(DeskScreen):
    form_text = StringProperty("")
    outcome_text = StringProperty("")
    outcome_kind = StringProperty("tick")
    outcome_tone = StringProperty("success")
    amount_text = StringProperty("")
    sent_text = StringProperty("")
    problems_text = StringProperty("")
    rejecting = BooleanProperty(False)
    reason = StringProperty("")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.draft: Draft | None = None

    def on_kv_post(self, base_widget):
        box = self.ids.reasons
        for code in wording.REASONS:
            button = Factory.DeskButton(tone="light")
            button.reason_code = code
            button.bind(on_release=lambda b: self.pick_reason(b.reason_code))
            box.add_widget(button)
        self.app.bind(language=self._name_reasons)
        self._name_reasons()

    def _name_reasons(self, *_args):
        for button in self.ids.reasons.children:
            button.text = self.app.tr(wording.REASONS[button.reason_code])

    def show(self, draft: Draft) -> None:
        self.draft = draft
        self.error = ""
        form = draft.form
        t = form["traveller"]
        self.form_text = Phrase(_("Form {form_id} · {name}"), form_id=form["id"],
                                name=f"{t['first_name']} {t['last_name']}")
        self.outcome_text = wording.outcome(draft.outcome)
        self.outcome_kind, self.outcome_tone = OUTCOME_LOOKS[draft.outcome]
        self.rejecting = draft.outcome == "rejected"
        self.reason = draft.reason_code or ""
        if self.ids.note.text != draft.note:
            self.ids.note.text = draft.note
        lines = self.ids.lines
        lines.clear_widgets()
        for item, present in draft.lines():
            lines.add_widget(Factory.DeskSentLine(
                text=Phrase.join("  ·  ", [f"{item['line']}. {item['description']}", wording.money(item["total_cents"])]),
                present=present))
        if draft.outcome == "rejected":
            self.amount_text = Phrase(_("No refund: the form is rejected ({total} not validated)."),
                                      total=wording.money(form["total_cents"]))
        else:
            self.amount_text = Phrase(_("Validated: {amount} of {total}"),
                                      amount=wording.money(draft.validated_total_cents()),
                                      total=wording.money(form["total_cents"]))
        self._refresh()

    def _refresh(self) -> None:
        draft = self.draft
        for button in self.ids.reasons.children:
            button.tone = "primary" if button.reason_code == draft.reason_code else "light"
        problems = draft.problems()
        self.problems_text = problems[0] if problems else ""
        body = draft.body()
        lines = Phrase.join(", ", [Phrase(_("{line} present") if entry["present"] else _("{line} NOT present"),
                                          line=entry["line"]) for entry in body["lines"]])
        sent = [Phrase(_("form: {form_id}"), form_id=draft.form_id),
                Phrase(_("outcome: {outcome}"), outcome=Code(body["outcome"], wording.outcome_in_sentence(body["outcome"]))),
                Phrase(_("lines: {lines}"), lines=lines)]
        if "reason_code" in body:
            reason = (Code(body["reason_code"], wording.reason(body["reason_code"])) if body["reason_code"]
                      else Phrase(_("(choose one)")))
            sent.append(Phrase(_("reason: {reason}"), reason=reason))
        if "note" in body:
            sent.append(Phrase(_("note: {note}"), note=body["note"]))
        self.sent_text = Phrase.join("\n", sent)

    def pick_reason(self, code: str) -> None:
        self.draft.reason_code = code
        self.reason = code
        self._refresh()

    def note_changed(self, text: str) -> None:
        if self.draft is not None:
            self.draft.note = text
            self._refresh()

    def send(self) -> None:
        self.app.send(self.draft)


SCREEN = OfficerConfirmScreen
