"""The retailer portal: log in, issue a form, print it, follow it.

Views speak HTTP and HTML only; issuing, cancelling and refunding are the
API's services (``api.services.forms``), so the rules, the audit trail and
the signed QR payload are the same as for a form issued through the API.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from shared import countries, rules

from .. import auth, database
from ..models import Event, Form, Retailer, utcnow
from ..problems import Problem
from ..services import forms, sign_in
from . import form_entry, i18n, labels, listing, timeline, web
from .i18n import gettext as _
from .qr import qr_svg
from .web import current_user, home_for, login_required, principal, safe_next

blp = Blueprint(
    "portal", __name__, url_prefix="/portal",
    template_folder="templates", static_folder="static", static_url_path="/static",
)
web.protect(blp)

RETAILER = ("retailer",)
# Who may log in to the pages, and for what: retailers to the portal,
# customs staff to the dashboard. Intermediaries work through the API.
PAGE_ROLES = ("retailer", "admin", "officer")


def _now() -> datetime:
    return utcnow()


def _today() -> date:
    return rules.local_today(_now(), current_app.config["RULESET"].timezone)


# --- logging in and out -----------------------------------------------------

@blp.get("/")
def home():
    user = current_user()
    return redirect(home_for(user) if user else url_for(".login"))


@blp.route("/login", methods=["GET", "POST"])
def login():
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        user = current_user()
        if user is not None and user.role in PAGE_ROLES:
            return redirect(next_path or home_for(user))
        return render_template("portal/login.html", next=next_path, username="", error=None)
    username = request.form.get("username", "").strip()[:100]
    password = request.form.get("password", "")[:200]
    db = database.session()
    guard = sign_in.login_guard(current_app.config)
    try:
        # The same counters as POST /api/v1/auth/token: guessing through the
        # page and the API at once gets no more tries.
        guard.before(db, username.lower(), request.remote_addr, _now())
    except Problem as too_many:
        return render_template(
            "portal/login.html", next=next_path, username=username,
            error=_("Too many attempts. Wait a minute and try again."),
        ), 429, too_many.headers
    user = auth.authenticate(username, password) if username and password else None
    if user is None:
        return render_template("portal/login.html", next=next_path, username=username,
                               error=_("Wrong username or password.")), 401
    guard.succeeded(db, username.lower(), request.remote_addr, _now())
    if user.role not in PAGE_ROLES:
        return render_template(
            "portal/login.html", next=next_path, username=username,
            error=_("This account cannot use the portal. Intermediaries register forms through the API."),
        ), 403
    lang = session.get("lang")
    session.clear()
    session.regenerate()
    session["user_id"] = user.id
    session["token_version"] = user.token_version
    if lang:
        session["lang"] = lang
    return redirect(next_path or home_for(user))


@blp.post("/logout")
def logout():
    session.end()
    # The next page starts a fresh, anonymous session.
    return redirect(url_for(".login", logged_out=1))


# --- the forms list -----------------------------------------------------------

# The filter form is posted: the search text goes into the session and the
# browser is sent to an address with only the status and the dates.
FILTER_ARGS = ("status", "from", "to")


def _remember_search(text: str | None) -> None:
    text = listing.search_text(text)
    if text:
        session[listing.SEARCH_KEY] = text
    else:
        session.pop(listing.SEARCH_KEY, None)


def _filter_args(values) -> dict[str, str]:
    return {k: values[k] for k in FILTER_ARGS if values.get(k)}


@blp.get("/forms")
@login_required(*RETAILER)
def forms_list():
    if "q" in request.args or "clear" in request.args:
        # A search in the address (an old bookmark, a hand-typed link) is
        # taken into the session and out of the address; "Clear" forgets it.
        _remember_search(None if "clear" in request.args else request.args.get("q"))
        keep = {} if "clear" in request.args else _filter_args(request.args)
        return redirect(url_for(".forms_list", **keep), 303)
    filters = listing.read_filters(request.args, session.get(listing.SEARCH_KEY))
    db = database.session()
    query = listing.filtered(principal(), filters).options(selectinload(Form.exit_point))
    page = listing.page_of(db, query, filters.page)
    return render_template("portal/forms_list.html", filters=filters, page=page,
                           statuses=labels.status_labels(), search_max=listing.SEARCH_MAX)


@blp.post("/forms")
@login_required(*RETAILER)
def search_forms():
    _remember_search(request.form.get("q"))
    return redirect(url_for(".forms_list", **_filter_args(request.form)), 303)


@blp.get("/forms.csv")
@login_required(*RETAILER)
def forms_csv():
    filters = listing.read_filters(request.args, session.get(listing.SEARCH_KEY))
    db = database.session()
    body = "".join(listing.csv_rows(db, listing.filtered(principal(), filters)))
    name = f"tax-free-forms-{_today().isoformat()}.csv"
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
    })


# --- a new form ---------------------------------------------------------------

@blp.route("/forms/new", methods=["GET", "POST"])
@login_required(*RETAILER)
def new_form():
    ruleset = current_app.config["RULESET"]
    default_rate = str(max(ruleset.vat_rates_bp) // 100)
    if request.method == "GET":
        entry = form_entry.Entry(
            values={"purchase_date": _today().isoformat(), "payment_method": "card"},
            lines=[form_entry.blank_line(default_rate)],
        )
        return _new_form_page(entry)
    entry = form_entry.read(request.form, default_rate)
    op = request.form.get("op", "issue")
    # Without JavaScript, "add line" and "remove" come back to the server.
    if op == "add_line":
        entry.lines.append(form_entry.blank_line(default_rate))
        return _new_form_page(entry, focus=f"items.{len(entry.lines) - 1}.description")
    if op.startswith("remove:"):
        return _new_form_page(entry)
    residence = entry.values["traveller.residence_country"]
    if countries.is_eu(residence):
        entry.add_error("traveller.residence_country", form_entry.eu_residence_message(residence))
    body = form_entry.body_of(entry)
    now = _now()
    if body is not None and form_entry.check_rules(entry, body, ruleset, now):
        db = database.session()
        try:
            form = forms.issue(db, principal(), body, _issuer(), now, last=True)
            db.commit()
        except Problem as refused:
            db.rollback()
            for path, messages in (refused.errors or {"_form": [refused.detail]}).items():
                for message in messages:
                    entry.add_error(path.replace(".unit_price_cents", ".price"), _(message))
        except IntegrityError:
            # Two clicks on "issue" at the same moment: the unique invoice
            # constraint let one through.
            db.rollback()
            entry.add_error("invoice_number", _("This invoice already has a tax-free form."))
        else:
            flash(_("Form {form_id} issued. Print it and give it to the traveller.").format(
                form_id=form.id), "success")
            return redirect(url_for(".print_form", form_id=form.id))
    return _new_form_page(entry, status=422)


def _issuer() -> forms.Issuer:
    kid, key = current_app.extensions["keyring"].signing_key(database.session())
    return forms.Issuer(
        ruleset=current_app.config["RULESET"],
        passport_secret=current_app.config["PASSPORT_HASH_KEY"].encode(),
        signing_kid=kid,
        signing_key=key,
    )


def _new_form_page(entry: form_entry.Entry, *, status: int = 200, focus: str | None = None):
    ruleset = current_app.config["RULESET"]
    if not entry.lines:
        entry.lines.append(form_entry.blank_line(str(max(ruleset.vat_rates_bp) // 100)))
    retailer = _retailer()
    fee_bp = retailer.intermediary.fee_bp if retailer.intermediary else 0
    return render_template(
        "portal/form_new.html",
        entry=entry,
        focus=focus,
        preview=_preview(entry, fee_bp),
        fee_bp=fee_bp,
        retailer=retailer,
        ruleset=ruleset,
        rates=sorted((r // 100 for r in ruleset.vat_rates_bp), reverse=True),
        categories=[c for c in rules.CATEGORIES if c not in ruleset.excluded_categories],
        category_labels=labels.category_labels(),
        payment_options=[(code, labels.payment_labels()[code]) for code in form_entry.PAYMENT_METHODS],
        blank=form_entry.blank_line(str(max(ruleset.vat_rates_bp) // 100)),
        country_options=i18n.country_options(i18n.current_language()),
        today=_today().isoformat(),
    ), status


def _retailer() -> Retailer:
    return database.session().get(Retailer, current_user().retailer_id)


def _preview(entry: form_entry.Entry, fee_bp: int) -> rules.Totals:
    """The totals of the lines that can be read, as the page shows them
    before JavaScript recomputes them live."""
    lines = []
    for line in entry.lines:
        price = form_entry.parse_amount_cents(line["price"])
        quantity = int(line["quantity"]) if line["quantity"].isdigit() else 0
        rate = int(line["vat_rate"]) * 100 if line["vat_rate"].isdigit() else 0
        if price and quantity:
            lines.append(rules.Line(quantity, price, rate, line["category"] or "other"))
            line["total_cents"] = quantity * price
    return rules.compute_totals(lines, fee_bp)


# --- one form -------------------------------------------------------------------

def _visible_form(form_id: str) -> Form:
    return forms.get_visible(database.session(), principal(), form_id)


def version_of(form: Form) -> str:
    """Changes whenever the form does; sent back with an action so a form
    changed meanwhile (scanned at the airport, say) is not acted on blindly."""
    return hashlib.sha256(f"{form.id}|{form.status}|{form.updated_at.isoformat()}".encode()).hexdigest()[:20]


@blp.get("/forms/<form_id>")
@login_required(*RETAILER)
def form_detail(form_id):
    form = _visible_form(form_id)
    return _detail_page(form)


def _detail_page(form: Form, *, refund_errors=None, refund_values=None, status=200):
    db = database.session()
    events = db.scalars(select(Event).where(Event.form_id == form.id).order_by(Event.id)).all()
    today = _today()
    due = forms.refund_due(form)
    return render_template(
        "portal/form_detail.html",
        form=form,
        version=version_of(form),
        timeline=timeline.entries(db, list(events)),
        qr=qr_svg(form.qr_payload, _("QR code of form {form_id}").format(form_id=form.id)),
        status_labels=labels.status_labels(),
        category_labels=labels.category_labels(),
        payment_labels=labels.payment_labels(),
        refund_errors=refund_errors or {},
        refund_values=refund_values or {"amount": i18n.eur_amount(due), "paid_on": today.isoformat()},
        today=today.isoformat(),
    ), status


@blp.get("/forms/<form_id>/print")
@login_required(*RETAILER)
def print_form(form_id):
    form = _visible_form(form_id)
    layout = request.args.get("layout", "a4")
    return render_template(
        "portal/form_print.html",
        form=form,
        layout=layout if layout in ("a4", "receipt") else "a4",
        qr=qr_svg(form.qr_payload, f"QR code of tax-free form {form.id}"),
        grouped_id=group_form_id(form.id),
        category_labels=labels.category_labels(english=True),
    )


def group_form_id(form_id: str) -> str:
    """``NL7K3QW9XD`` -> ``NL 7K3Q W9XD``: easier to read out and type; typed
    spaces are ignored when a form id is looked up."""
    return f"{form_id[:2]} {form_id[2:6]} {form_id[6:]}"


def _stale(form: Form) -> bool:
    if request.form.get("version") != version_of(form):
        flash(_("The form changed since you opened it. Check its status and try again."), "error")
        return True
    return False


@blp.post("/forms/<form_id>/cancel")
@login_required(*RETAILER)
def cancel_form(form_id):
    db = database.session()
    form = _visible_form(form_id)
    if not _stale(form):
        try:
            forms.cancel(db, principal(), form, _now())
            db.commit()
            flash(_("Form {form_id} is cancelled.").format(form_id=form.id), "success")
        except Problem:
            db.rollback()
            flash(_("Only a form that has not been used at an exit point yet can be cancelled."), "error")
    return redirect(url_for(".form_detail", form_id=form.id))


@blp.post("/forms/<form_id>/refund")
@login_required(*RETAILER)
def refund_form(form_id):
    db = database.session()
    form = _visible_form(form_id)
    if _stale(form):
        return redirect(url_for(".form_detail", form_id=form.id))
    values = {"amount": request.form.get("amount", "").strip(), "paid_on": request.form.get("paid_on", "").strip()}
    errors: dict[str, list[str]] = {}
    amount = form_entry.parse_amount_cents(values["amount"])
    if not amount:
        errors["amount"] = [_("Enter an amount in euros, like 12.50.")]
    today = _today()
    try:
        paid_on = date.fromisoformat(values["paid_on"])
        if paid_on > today:
            errors["paid_on"] = [_("The payment date cannot be after today.")]
    except ValueError:
        errors["paid_on"] = [_("Enter a date like 2026-03-14.")]
    if not errors:
        now = _now()
        zone = ZoneInfo(current_app.config["RULESET"].timezone)
        paid_at = now if paid_on == today else datetime.combine(paid_on, time(12), zone).astimezone(timezone.utc)
        try:
            forms.refund(db, principal(), form, amount, paid_at, now)
            db.commit()
        except Problem as refused:
            db.rollback()
            db.refresh(form)
            if refused.code != "refund_too_large":
                flash(_("Only a validated form can be marked as refunded."), "error")
                return redirect(url_for(".form_detail", form_id=form.id))
            errors["amount"] = [_("The refund cannot be more than the refund due for the validated goods ({due}).")
                                .format(due=i18n.money(forms.refund_due(form)))]
        else:
            flash(_("Refund of {amount} recorded.").format(amount=i18n.money(amount)), "success")
            return redirect(url_for(".form_detail", form_id=form.id))
    return _detail_page(form, refund_errors=errors, refund_values=values, status=422)
