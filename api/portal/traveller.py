"""The traveller's status page: form number + last name -> where the form
stands and the one thing to do next.

Public, so it shows nothing personal (no name, passport, goods or amounts),
answers "no such form" and "wrong name" alike, and is rate-limited per
address and per form number with the database-backed counters
(``api.services.throttle``, shared by all workers). The lookup itself is
``api.services.traveller_status``, the one behind POST /api/v1/status, with
the same counters, so page and API together give no extra guesses.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from shared import formid

from .. import database
from ..models import utcnow
from ..problems import Problem
from ..services import sign_in, traveller_status
from . import web
from .i18n import gettext as _

blp = Blueprint("portal_status", __name__, url_prefix="/status")
web.protect(blp)


def outcome(found: traveller_status.TravellerStatus) -> dict:
    """What the page says about a form: a tone (colour and icon), a
    heading, and one next step, in the traveller's language."""
    status = found.status
    if status == "issued":
        tone, heading = "pending", _("Not validated yet")
        step = _("Validate your form at your last EU airport or port, before you check in your luggage.")
    elif status == "check_required":
        tone, heading = "desk", _("Customs check needed")
        step = _("Go to the customs desk with your goods, your passport and this form, "
                 "before you check in your luggage.")
    elif status in ("validated", "partially_validated"):
        tone = "ok"
        heading = _("Export validated") if status == "validated" else _("Export validated for part of your goods")
        step = _("Your refund will be paid by {payer}.").format(payer=found.paid_by)
    elif status == "refunded":
        tone, heading = "ok", _("Refund paid")
        step = _("Nothing more to do. Have a good trip!")
    elif status == "rejected":
        tone, heading = "refused", _("Export refused by customs")
        step = _("This form cannot be validated any more. Ask the shop if you have questions.")
    elif status == "cancelled":
        tone, heading = "refused", _("Form cancelled by the shop")
        step = _("This form cannot be used. Ask the shop if you have questions.")
    else:  # expired
        tone, heading = "refused", _("Export deadline passed")
        step = _("This form can no longer be validated.")
    return {"tone": tone, "heading": heading, "step": step,
            "show_deadline": status in ("issued", "check_required", "expired")}


@blp.route("", methods=["GET", "POST"])
def status_page():
    if request.method == "GET":
        return render_template("portal/status.html", form_id="", last_name="", errors={}, result=None)
    form_id = request.form.get("form_id", "").strip()[:40]
    last_name = request.form.get("last_name", "").strip()[:100]
    errors: dict[str, str] = {}
    if not form_id:
        errors["form_id"] = _("Fill this in.")
    elif not formid.is_valid_form_id(form_id):
        errors["form_id"] = _("This is not a valid form number. Check it on your form.")
    if not last_name:
        errors["last_name"] = _("Fill this in.")
    if errors:
        return render_template("portal/status.html", form_id=form_id, last_name=last_name,
                               errors=errors, result=None), 422
    db = database.session()
    now = utcnow()
    number = formid.normalize_form_id(form_id)
    guard = sign_in.status_guard(current_app.config)
    try:
        # Per address; per form and address, waiting longer after each
        # wrong name; and per form from unfamiliar addresses, so guessing
        # the last name for one form number from many addresses runs out
        # as quickly.
        guard.before(db, number, request.remote_addr, now)
    except Problem as too_many:
        return render_template(
            "portal/status.html", form_id=form_id, last_name=last_name, result=None,
            errors={"_form": _("Too many attempts. Wait a minute and try again.")},
        ), 429, too_many.headers
    # The same lookup as POST /api/v1/status/{form_id}: one rule for
    # matching names, and the same counters above.
    found = traveller_status.lookup(db, number, last_name)
    if found is None:
        return render_template(
            "portal/status.html", form_id=form_id, last_name=last_name, result=None,
            errors={"_form": _("We found no form with this number and last name.")},
        ), 404
    guard.succeeded(db, number, request.remote_addr, now)
    return render_template("portal/status.html", form_id="", last_name="", errors={},
                           result=outcome(found), found=found)


def page_expired():
    """The status form came back without a valid CSRF token (the page was
    open longer than a session lives): show it again, ready to send."""
    return render_template(
        "portal/status.html", form_id=request.form.get("form_id", "")[:40], last_name="", result=None,
        errors={"_form": _("This page was open for a long time. Please send it again.")},
    ), 400
