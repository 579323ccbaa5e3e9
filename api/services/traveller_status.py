"""What a traveller may learn about a form with its number and their last
name, without logging in: the status, the deadline and the one next step,
never personal data. A wrong name and an unknown number look the same, so
the lookup tells nobody whether a form exists.
"""
from __future__ import annotations

import hmac
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from shared import formid

from ..models import Form, Retailer

# Letters that Unicode does not split into a base letter and an accent.
_FOLD = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"})


def name_key(name: str) -> str:
    """A last name reduced to what travellers type alike: no case, no
    accents, no spaces, hyphens or apostrophes (Müller = MULLER, O'Brien =
    obrien)."""
    folded = unicodedata.normalize("NFKD", name.casefold().translate(_FOLD))
    return "".join(c for c in folded if c.isalnum())


def same_last_name(given: str, on_form: str) -> bool:
    return hmac.compare_digest(name_key(given).encode(), name_key(on_form).encode())


@dataclass(frozen=True)
class TravellerStatus:
    form_id: str
    status: str
    export_deadline: date
    next_step: str
    exit_point: str | None
    validated_at: datetime | None
    refund_cents: int
    refunded_at: datetime | None
    paid_by: str


def _payer(form: Form) -> str:
    intermediary = form.retailer.intermediary
    return intermediary.name if intermediary is not None else form.retailer.name


def next_step(form: Form) -> str:
    """The one thing the traveller should do now, in plain words."""
    deadline = f"{form.export_deadline.day} {form.export_deadline:%B %Y}"
    payer = _payer(form)
    return {
        "issued": f"Before you check in your luggage, scan this form's QR code at a customs kiosk at "
                  f"the last EU airport or port you leave from, no later than {deadline}.",
        "check_required": "Go to the customs desk with your goods, your passport and this form "
                          "before you check in your luggage.",
        "validated": f"Nothing more to do: the export is validated. {payer} pays your refund.",
        "partially_validated": f"Nothing more to do: the export is validated for the goods you showed. "
                               f"{payer} pays the refund for those goods.",
        "rejected": f"Customs did not validate the export, so no VAT is refunded. "
                    f"Ask {payer} if you have questions.",
        "cancelled": "The shop cancelled this form. Ask the shop for a new one if you still need it.",
        "expired": f"The export deadline, {deadline}, passed before the export was validated; "
                   f"this form can no longer be used.",
        "refunded": f"Nothing more to do: {payer} has paid your refund.",
    }[form.status]


def lookup(session: Session, form_id: str, last_name: str) -> TravellerStatus | None:
    """The status of form ``form_id`` if ``last_name`` is the traveller's;
    None for an unknown form and for a wrong name alike."""
    form = session.scalar(
        select(Form)
        .options(selectinload(Form.retailer).selectinload(Retailer.intermediary),
                 selectinload(Form.exit_point))
        .where(Form.id == formid.normalize_form_id(form_id))
    )
    # A form whose personal data was removed has no name to match: it is
    # not found, as for a wrong name.
    if form is None or form.last_name is None or not same_last_name(last_name, form.last_name):
        return None
    if form.status in ("rejected", "cancelled", "expired"):
        refund = 0
    elif form.refunded_cents is not None:
        refund = form.refunded_cents
    elif form.validated_refund_cents is not None:
        refund = form.validated_refund_cents
    else:
        refund = form.refund_cents
    return TravellerStatus(
        form_id=form.id,
        status=form.status,
        export_deadline=form.export_deadline,
        next_step=next_step(form),
        exit_point=form.exit_point.code if form.exit_point is not None else None,
        validated_at=form.validated_at,
        refund_cents=refund,
        refunded_at=form.refunded_at,
        paid_by=_payer(form),
    )
