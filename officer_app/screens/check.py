"""The check: the traveller beside the passport held, each form's lines
with a present / not present toggle, and the outcome buttons."""
from __future__ import annotations

from datetime import date

from kivy.clock import Clock
from kivy.factory import Factory
from kivy.properties import StringProperty

from shared import mrz

from .. import wording
from ..desk import Case
from .base import DeskScreen

# Status chip of a form: (icon, tone, text).
STATUS_CHIPS = {
    "check_required": ("dot", "warning", "To check"),
    "validated": ("tick", "success", "Validated"),
    "partially_validated": ("half", "warning", "Partial"),
    "rejected": ("cross", "danger", "Rejected"),
    "refunded": ("tick", "success", "Refunded"),
    "issued": ("dot", "neutral", "Issued"),
    "cancelled": ("cross", "neutral", "Cancelled"),
    "expired": ("cross", "neutral", "Expired"),
}


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


class OfficerCheckScreen(DeskScreen):
    name_text = StringProperty("")
    passport_text = StringProperty("")
    details_text = StringProperty("")
    warnings_text = StringProperty("")
    back_to = StringProperty("queue")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.case: Case | None = None

    def show(self, case: Case) -> None:
        self.case = case
        self.error = ""
        today = date.today()
        t = case.traveller
        countries = [f"Nationality: {wording.country(t['nationality'])}",
                     f"Lives in: {wording.country(t['residence_country'])}"]
        if t.get("date_of_birth") is None:
            # Removed a while after the form's final status (data retention);
            # the countries stay.
            self.name_text = "Personal data removed"
            self.passport_text = f"Passport  ·  {wording.country(t['passport_country'])}"
            self.details_text = "\n".join(countries)
        else:
            born = date.fromisoformat(t["date_of_birth"])
            self.name_text = f"{t['first_name']} {t['last_name']}"
            self.passport_text = f"Passport {t['passport_number']}  ·  {wording.country(t['passport_country'])}"
            self.details_text = "\n".join(countries + [f"Born: {wording.day(born)} (age {_age(born, today)})"])
        warnings = case.warnings(today)
        if case.found_by == "desk_pass":
            warnings.insert(0, wording.text("found_by_desk_pass", self.app.settings.language))
        self.warnings_text = "\n".join(warnings)
        self.back_to = "queue" if case.found_by == "queue" else "find"
        self._show_comparisons(case)
        box = self.ids.forms
        box.clear_widgets()
        for form in case.forms:
            box.add_widget(self._card(form))
        self.ids.scroll.scroll_y = 1

    def _show_comparisons(self, case: Case) -> None:
        box = self.ids.comparisons
        box.clear_widgets()
        rows = case.comparisons()
        if not rows:
            return
        box.add_widget(Factory.DeskText(text="Passport read at the desk", bold=True))
        for row in rows:
            box.add_widget(Factory.DeskComparison(
                label=row.label, form_value=row.on_form, passport_value=row.on_passport, matches=row.matches))

    def _card(self, form: dict):
        desk = self.app.desk
        waiting = desk.waiting_for(form["id"])
        decidable = form["status"] == "check_required" and waiting is None
        if waiting is not None:
            kind, tone, text = "clock", "warning", "Saved, not sent"
        else:
            kind, tone, text = STATUS_CHIPS.get(form["status"], ("dot", "neutral", form["status"]))
        language = self.app.settings.language
        rules = " · ".join(wording.rule(r.get("code", ""), language) for r in desk.fired_rules(form["id"]))
        details = [
            f"{form['retailer_name']} · invoice {form['invoice_number']} of {wording.day(form['purchase_date'])}",
            f"Leave the EU by {wording.day(form['export_deadline'])} · total {wording.money(form['total_cents'])}"
            f" · refund {wording.money(form['refund_cents'])}",
        ]
        if form["status"] != "check_required":
            details.append(wording.status(form["status"]) + (
                f" at {wording.local_time(form['validated_at'])}" if form.get("validated_at") else ""))
        if waiting is not None:
            details.append(f"Your decision ({wording.outcome(waiting.body['outcome']).lower()}) is saved "
                           "on this handheld and will be sent when the network is back.")
        card = Factory.DeskFormCard(owner=self, form_id=form["id"], header=form["id"],
                                    details="\n".join(details), rules=rules, status_text=text,
                                    status_kind=kind, status_tone=tone, decidable=decidable,
                                    openable=form["status"] == "issued" and waiting is None,
                                    open_text=wording.text("open_check", language))
        card.form = form
        for item in form["items"]:
            meta = [wording.category(item["category"]), f"qty {item['quantity']}", wording.money(item["total_cents"])]
            if item.get("serial_number"):
                meta.append(f"serial {item['serial_number']}")
            row = Factory.DeskLineRow(
                line=item["line"], title=f"{item['line']}. {item['description']}",
                details="  ·  ".join(meta),
                present=item.get("present") is not False, locked=not decidable)
            row.bind(present=card.recount)
            card.lines_box.add_widget(row)
        card.line_count = len(form["items"])
        card.recount()
        return card

    def cards(self) -> list:
        return [w for w in reversed(self.ids.forms.children) if hasattr(w, "form")]

    def open_check(self, card) -> None:
        self.app.open_check(card.form)

    def choose(self, card, outcome: str) -> None:
        self.app.choose(card.form, outcome, card.presence())

    def passport_typed(self, text: str) -> None:
        if mrz.looks_like_mrz(text):
            # Emptied after the reader's keystroke is handled, not inside it.
            Clock.schedule_once(lambda _dt: setattr(self.ids.passport, "text", ""), 0)
            self.app.compare_passport(text)


SCREEN = OfficerCheckScreen
