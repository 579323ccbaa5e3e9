"""The check: the traveller beside the passport held, each form's lines
with a present / not present toggle, and the outcome buttons."""
from __future__ import annotations

from datetime import date

from kivy.clock import Clock
from kivy.factory import Factory
from kivy.properties import BooleanProperty, StringProperty

from shared import mrz

from .. import wording
from ..desk import Case
from ..wording import Phrase, _
from .base import DeskScreen

# Status chip of a form: (icon, tone, text).
STATUS_CHIPS = {
    "check_required": ("dot", "warning", _("To check")),
    "validated": ("tick", "success", _("Validated")),
    "partially_validated": ("half", "warning", _("Partial")),
    "rejected": ("cross", "danger", _("Rejected")),
    "refunded": ("tick", "success", _("Refunded")),
    "issued": ("dot", "neutral", _("Issued")),
    "cancelled": ("cross", "neutral", _("Cancelled")),
    "expired": ("cross", "neutral", _("Expired")),
}


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


class OfficerCheckScreen(DeskScreen):
    name_text = StringProperty("")
    passport_text = StringProperty("")
    details_text = StringProperty("")
    warnings_text = StringProperty("")
    back_to = StringProperty("queue")
    compared = BooleanProperty(False)  # a passport was read at the desk

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.case: Case | None = None

    def show(self, case: Case) -> None:
        self.case = case
        self.error = ""
        today = date.today()
        t = case.traveller
        countries = [Phrase(_("Nationality: {country}"), country=wording.country(t["nationality"])),
                     Phrase(_("Lives in: {country}"), country=wording.country(t["residence_country"]))]
        if t.get("date_of_birth") is None:
            # Removed a while after the form's final status (data retention);
            # the countries stay.
            self.name_text = Phrase(_("Personal data removed"))
            self.passport_text = Phrase(_("Passport  ·  {country}"), country=wording.country(t["passport_country"]))
            self.details_text = Phrase.join("\n", countries)
        else:
            born = date.fromisoformat(t["date_of_birth"])
            self.name_text = f"{t['first_name']} {t['last_name']}"
            self.passport_text = Phrase(_("Passport {number}  ·  {country}"), number=t["passport_number"],
                                        country=wording.country(t["passport_country"]))
            self.details_text = Phrase.join("\n", countries + [
                Phrase(_("Born: {date} (age {age})"), date=born, age=_age(born, today))])
        warnings = case.warnings(today)
        if case.found_by == "desk_pass":
            warnings.insert(0, Phrase(wording.TEXTS["found_by_desk_pass"]))
        self.warnings_text = Phrase.join("\n", warnings) if warnings else ""
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
        self.compared = bool(rows)
        for row in rows:
            box.add_widget(Factory.DeskComparison(
                label=row.label, form_value=row.on_form, passport_value=row.on_passport, matches=row.matches))

    def _card(self, form: dict):
        desk = self.app.desk
        waiting = desk.waiting_for(form["id"])
        decidable = form["status"] == "check_required" and waiting is None
        if waiting is not None:
            kind, tone, text = "clock", "warning", Phrase(_("Saved, not sent"))
        elif form["status"] in STATUS_CHIPS:
            kind, tone, label = STATUS_CHIPS[form["status"]]
            text = Phrase(label)
        else:
            kind, tone, text = "dot", "neutral", form["status"]
        rules = Phrase.join(" · ", [wording.rule(r.get("code", "")) for r in desk.fired_rules(form["id"])])
        details = [
            Phrase(_("{retailer} · invoice {invoice} of {date}"), retailer=form["retailer_name"],
                   invoice=form["invoice_number"], date=wording.day(form["purchase_date"])),
            Phrase(_("Leave the EU by {date} · total {total} · refund {refund}"),
                   date=wording.day(form["export_deadline"]), total=wording.money(form["total_cents"]),
                   refund=wording.money(form["refund_cents"])),
        ]
        if form["status"] != "check_required":
            details.append(Phrase(_("{status} at {time}"), status=wording.status(form["status"]),
                                  time=wording.local_time(form["validated_at"])) if form.get("validated_at")
                           else wording.status(form["status"]))
        if waiting is not None:
            details.append(Phrase(_("Your decision ({outcome}) is saved on this handheld and will be sent "
                                    "when the network is back."),
                                  outcome=wording.outcome_in_sentence(waiting.body["outcome"])))
        card = Factory.DeskFormCard(owner=self, form_id=form["id"], header=form["id"],
                                    details=Phrase.join("\n", details), rules=rules if rules else "",
                                    status_text=text, status_kind=kind, status_tone=tone, decidable=decidable,
                                    openable=form["status"] == "issued" and waiting is None,
                                    open_text=Phrase(wording.TEXTS["open_check"]))
        card.form = form
        for item in form["items"]:
            meta = [wording.category(item["category"]), Phrase(_("qty {quantity}"), quantity=item["quantity"]),
                    wording.money(item["total_cents"])]
            if item.get("serial_number"):
                meta.append(Phrase(_("serial {number}"), number=item["serial_number"]))
            row = Factory.DeskLineRow(
                line=item["line"], title=f"{item['line']}. {item['description']}",
                details=Phrase.join("  ·  ", meta),
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
