"""Issuing forms and the lifecycle steps their owners take: cancel, refund.

Who may see a form is decided here too: a retailer sees its own forms, an
intermediary the forms it is the intermediary of (those issued while the
retailer worked with it: it pays their refunds, and a retailer's next
intermediary has no business with them); customs staff see every form;
anyone else meets a 404, so a form's existence never leaks.

Only the form's owners act on it as a shop does (issue, cancel, record the
refund): a retailer's users and its intermediary's. Customs roles, the
administrator included, never do: customs certify exports, they do not
sell or refund.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import Select, bindparam, column, exists, func, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from shared import formid, qrtoken, rules

from ..auth import SHOP_COLUMNS, Principal
from ..database import HotStatement
from ..models import Check, ExitPoint, Form, FormLine, Intermediary, Retailer, held
from ..problems import Problem
from . import audit

# Roles that may read any form: customs staff.
READ_ALL = ("admin", "officer")
# Roles that act on a form as its owner: issue, cancel, record the refund.
RETAIL_ROLES = ("retailer", "intermediary")
VALIDATED = ("validated", "partially_validated")
# A till's clock may run a little ahead of the API's.
PAYMENT_CLOCK_SKEW = timedelta(minutes=5)


def require_retail(principal: Principal) -> None:
    """Refuse anyone but a retailer's or an intermediary's user (a second
    line behind the views' role lists: the portal calls these services too)."""
    if principal.role not in RETAIL_ROLES:
        raise Problem(403, "forbidden", "Only the shop or its intermediary can do this.")


@dataclass(frozen=True)
class Issuer:
    """What issuing a form needs from the app's configuration."""

    ruleset: rules.RuleSet
    passport_secret: bytes
    signing_kid: str
    signing_key: object  # Ed25519PrivateKey


def passport_key(secret: bytes, country: str, number: str) -> str:
    """A keyed hash naming a passport, for lookups without the number itself."""
    normalised = f"{country.upper()}:{number.upper().replace(' ', '').replace('<', '')}"
    return hmac.new(secret, normalised.encode(), hashlib.sha256).hexdigest()


def visible_forms(principal: Principal) -> Select:
    """The forms ``principal`` may see, as a query to refine."""
    query = select(Form)
    if principal.role in READ_ALL:
        return query
    if principal.role == "retailer":
        return query.where(Form.retailer_id == principal.retailer_id)
    if principal.role == "intermediary":
        return query.where(Form.intermediary_id == principal.intermediary_id)
    return query.where(False)


def get_visible(session: Session, principal: Principal, form_id: str, *, for_update=False) -> Form:
    form_id = formid.normalize_form_id(form_id)
    if not formid.is_valid_form_id(form_id):
        # Not even the shape of a form id (a typo the check character caught).
        raise Problem(404, "form_not_found", f"{form_id!r} is not a form id; check it for typos.")
    query = visible_forms(principal).where(Form.id == form_id)
    if for_update:
        query = query.with_for_update()
    form = session.scalar(query)
    if form is None:
        raise Problem(404, "form_not_found", f"No form {form_id} that you can see.")
    return form


def resolve_retailer(session: Session, principal: Principal, retailer_vat: str | None) -> Retailer:
    """The retailer a new form is issued for."""
    require_retail(principal)
    if principal.role == "retailer":
        retailer = _own_shop(session, principal)
        _refuse_another_shop(retailer_vat, retailer.vat_number)
        return retailer
    if not retailer_vat:
        raise _field_problem("retailer_vat", "Name the retailer the form is issued for.")
    retailer = session.scalar(select(Retailer).options(joinedload(Retailer.intermediary))
                              .where(Retailer.vat_number == retailer_vat))
    if retailer is None or (
        principal.role == "intermediary" and retailer.intermediary_id != principal.intermediary_id
    ):
        raise _field_problem("retailer_vat", "No retailer with this VAT number that you act for.")
    return retailer


# A shop issuing its own form: its row and its intermediary's (issuing needs
# the fee), as authentication read them with the user's row, made into the
# session's objects without the ORM's loading machinery (every form a till
# issues needs them). Read here only for a principal made without them.
_SHOPS, _INTERMEDIARIES = Retailer.__table__, Intermediary.__table__
_SHOP = HotStatement(select(*SHOP_COLUMNS)
                     .outerjoin(_INTERMEDIARIES, _SHOPS.c.intermediary_id == _INTERMEDIARIES.c.id)
                     .where(_SHOPS.c.id == bindparam("retailer_id")))


def _shop_row(session: Session, principal: Principal) -> tuple:
    return principal.shop or _SHOP.execute(session, {"retailer_id": principal.retailer_id}).fetchone()


def _own_shop(session: Session, principal: Principal) -> Retailer:
    retailer = held(session, Retailer, principal.retailer_id)
    if retailer is not None:
        return retailer
    row = _shop_row(session, principal)
    n = len(_SHOPS.c)
    retailer = Retailer(**dict(zip(_SHOPS.c.keys(), row[:n])))
    intermediary = None
    if retailer.intermediary_id is not None:
        intermediary = held(session, Intermediary, retailer.intermediary_id)
        if intermediary is None:
            intermediary = Intermediary(**dict(zip(_INTERMEDIARIES.c.keys(), row[n:])))
            make_transient_to_detached(intermediary)
            session.add(intermediary)
    set_committed_value(retailer, "intermediary", intermediary)
    make_transient_to_detached(retailer)
    session.add(retailer)
    return retailer


@dataclass(frozen=True)
class Shop:
    """What issuing a form needs of its shop, and what its answer shows."""

    id: int
    vat_number: str
    name: str
    intermediary_id: int | None
    fee_bp: int  # its intermediary's fee; 0 without one

    @classmethod
    def of(cls, retailer: Retailer) -> Shop:
        return cls(retailer.id, retailer.vat_number, retailer.name, retailer.intermediary_id,
                   retailer.intermediary.fee_bp if retailer.intermediary else 0)


_SHOP_ID, _SHOP_VAT, _SHOP_NAME, _SHOP_INTERMEDIARY = (
    list(_SHOPS.c.keys()).index(name) for name in ("id", "vat_number", "name", "intermediary_id"))
_INTERMEDIARY_FEE = len(_SHOPS.c) + list(_INTERMEDIARIES.c.keys()).index("fee_bp")


def _shop_as_read(session: Session, principal: Principal) -> Shop:
    """A shop's own user's shop, from its row as read (no ORM objects)."""
    row = _shop_row(session, principal)
    fee = row[_INTERMEDIARY_FEE] if row[_SHOP_INTERMEDIARY] is not None else 0
    return Shop(row[_SHOP_ID], row[_SHOP_VAT], row[_SHOP_NAME], row[_SHOP_INTERMEDIARY], fee)


class IssuedForm(SimpleNamespace):
    """A form just issued, as written: the attributes a Form, its lines and
    its shop show (what FormSchema dumps), as plain values rather than ORM
    objects the session would hold."""


def _refuse_another_shop(retailer_vat: str | None, own_vat: str) -> None:
    """A shop's user names no shop, or their own."""
    if retailer_vat and retailer_vat != own_vat:
        raise _field_problem("retailer_vat", "You can only issue forms for your own shop.")


def _field_problem(field: str, message: str) -> Problem:
    return Problem(422, "invalid_request", message, errors={field: [message]})


def issue(session: Session, principal: Principal, data: dict, issuer: Issuer, now: datetime, *,
          last: bool = False) -> Form | IssuedForm:
    """Check a new form against the rules and store it with its signed QR payload.

    ``data`` is the validated request body. Raises a 422 problem naming every
    field that breaks a rule, or 409 when the invoice already has a form.
    ``last``: the caller commits the form without writing anything else but
    an idempotency record (``audit.record_pair_after``'s ``last``), and acts
    on the form no further than showing it: the form then comes back as an
    IssuedForm (and a shop's own user's shop is not made an ORM object
    either). Otherwise the form is a Form of the session, as if read back.
    """
    if last and principal.role == "retailer":
        # Nothing in the transaction acts on the form after this: no ORM
        # objects for the session, for the shop or the form.
        shop, retailer = _shop_as_read(session, principal), None
        _refuse_another_shop(data.get("retailer_vat"), shop.vat_number)
    else:
        retailer = resolve_retailer(session, principal, data.get("retailer_vat"))
        shop = Shop.of(retailer)
    traveller = data["traveller"]
    items = data["items"]
    lines = [
        rules.Line(i["quantity"], i["unit_price_cents"], i["vat_rate_bp"], i["category"])
        for i in items
    ]
    draft = rules.Draft(data["purchase_date"], traveller["residence_country"], lines)
    violations = rules.check_eligibility(draft, issuer.ruleset, now)
    if violations:
        errors: dict[str, list[str]] = {}
        for v in violations:
            errors.setdefault(v.field, []).append(v.message)
        raise Problem(
            422,
            "ineligible_form",
            "This purchase does not qualify for a tax-free refund: " + violations[0].message,
            errors=errors,
        )
    totals = rules.compute_totals(lines, shop.fee_bp)
    deadline = rules.export_deadline(data["purchase_date"], issuer.ruleset.export_months)
    session.flush()  # ORM changes first: a batch's earlier forms, say
    connection = session.connection()
    numbering = last and connection.dialect.name == "postgresql" and audit.may_number_early(session)
    # A new id is drawn at random: should a form already have it, nothing
    # is written (no counter taken either) and another is drawn, rather
    # than the shop being told of a conflict that is not its own.
    for _attempt in range(_ID_DRAWS):
        form_id = formid.new_form_id(issuer.ruleset.country)
        values, line_values = _form_values(form_id, principal, shop, data, totals, deadline, issuer, now)
        issued = {"form_id": form_id, "type": "form.issued", "actor": principal.actor, "at": now,
                  "total_cents": totals.total_cents, "refund_cents": totals.refund_cents}
        # The invoice's unique constraint and the id's key answer whether
        # they are taken, in the INSERT itself: no read before it, and no
        # race after one. Only when nothing was written does a read tell
        # which.
        if _inserted(session, connection, values, line_values, issued, numbering):
            break
        if connection.execute(_INVOICE_TAKEN, {"retailer_id": shop.id,
                                               "invoice_number": data["invoice_number"]}).first():
            raise Problem(
                409,
                "duplicate_invoice",
                f"Invoice {data['invoice_number']} already has a tax-free form.",
                errors={"invoice_number": ["This invoice already has a tax-free form."]},
            )
    else:
        raise RuntimeError(f"{_ID_DRAWS} form ids drawn, every one of them taken")
    stored = {**values, **_NOT_YET}
    if last:
        return IssuedForm(**stored, retailer=shop, exit_point=None,
                          lines=[SimpleNamespace(**line, present=None) for line in line_values])
    return _as_loaded(session, Form(**stored), [FormLine(**line, present=None) for line in line_values], retailer)


def _form_values(form_id: str, principal: Principal, shop, data: dict, totals, deadline, issuer: Issuer,
                 now: datetime) -> tuple[dict, list[dict]]:
    """The new form's row and its lines' rows, with its QR payload signed
    for ``form_id``."""
    traveller = data["traveller"]
    values = dict(
        id=form_id,
        retailer_id=shop.id,
        intermediary_id=principal.intermediary_id if principal.role == "intermediary" else shop.intermediary_id,
        status="issued",
        invoice_number=data["invoice_number"],
        purchase_date=data["purchase_date"],
        payment_method=data.get("payment_method"),
        refund_method=data.get("refund_method"),
        first_name=traveller["first_name"],
        last_name=traveller["last_name"],
        passport_number=traveller["passport_number"],
        passport_country=traveller["passport_country"],
        passport_key=passport_key(
            issuer.passport_secret, traveller["passport_country"], traveller["passport_number"]
        ),
        nationality=traveller["nationality"],
        residence_country=traveller["residence_country"],
        date_of_birth=traveller["date_of_birth"],
        email=traveller.get("email"),
        currency="EUR",
        total_cents=totals.total_cents,
        vat_cents=totals.vat_cents,
        fee_cents=totals.fee_cents,
        refund_cents=totals.refund_cents,
        fee_bp=shop.fee_bp,
        export_deadline=deadline,
        qr_payload=qrtoken.sign_form_token(
            form_id,
            shop.vat_number,
            rules.deadline_end_utc(deadline, issuer.ruleset.timezone),
            issuer.signing_key,
            issuer.signing_kid,
        ),
        qr_kid=issuer.signing_kid,
        created_at=now,
        updated_at=now,
    )
    line_values = [
        dict(
            form_id=form_id,
            line=n,
            description=item["description"],
            quantity=item["quantity"],
            unit_price_cents=item["unit_price_cents"],
            vat_rate_bp=item["vat_rate_bp"],
            vat_cents=totals.line_vat_cents[n - 1],
            total_cents=totals.line_total_cents[n - 1],
            category=item["category"],
            serial_number=item.get("serial_number"),
        )
        for n, item in enumerate(data["items"], start=1)
    ]
    return values, line_values


def _inserted(session: Session, connection, values: dict, line_values: list[dict], issued: dict,
              numbering: bool) -> bool:
    """Insert the form, its lines and its event, unless its invoice or its
    id is taken (then nothing is written)."""
    if connection.dialect.name == "postgresql":
        # The form, its lines and its event in one statement (all or none).
        return audit.record_by(session, _issue_statement(tuple(values), numbering),
                               {**values, "lines": line_values}, numbering=numbering, **issued) is not None
    if connection.execute(_INSERT_FORM, values).scalar() is None:
        return False
    connection.execute(_INSERT_LINE, line_values)
    audit.record(session, **issued)
    return True


# Ids drawn for one form before giving up: with 35 random bits, a second
# draw is already a rare event and a fifth one is never needed.
_ID_DRAWS = 5


# Plain INSERTs, built once: the ORM's unit of work costs more than the
# statements themselves.
_FORMS, _LINES = Form.__table__, FormLine.__table__
_LINE_COLUMNS = ("line", "description", "quantity", "unit_price_cents", "vat_rate_bp", "vat_cents", "total_cents",
                 "category", "serial_number")
# SQLite: nothing written if the invoice or the id is taken (any of the
# table's unique constraints; a new form's change_seq is still NULL).
_INSERT_FORM = sqlite.insert(_FORMS).on_conflict_do_nothing().returning(_FORMS.c.id)
_INSERT_LINE = _LINES.insert()
_INVOICE_TAKEN = select(_FORMS.c.id).where((_FORMS.c.retailer_id == bindparam("retailer_id"))
                                           & (_FORMS.c.invoice_number == bindparam("invoice_number")))


@functools.cache
def _issue_statement(columns: tuple[str, ...], numbering: bool = False):
    """PostgreSQL: the form (unless its invoice has one, or its id is
    another form's) with ``columns``,
    its lines (given as one JSON array of objects) and its event, one
    statement. With ``numbering``, the statement also takes its event's
    number in the audit chain (``audit.Numbers``), for an issue that is its
    transaction's only write. A new form is marked changed for the change
    feed as it is (its ``change_seq`` is NULL).

    First of all, the statement takes a transaction lock on the invoice
    (``invoice``): a form's insert waits for another transaction's insert
    of the same invoice to end, and this way it waits on the lock instead,
    before taking anything else. An issue that takes the counter in its
    statement would otherwise hold it while waiting for, say, a batch
    holding the invoice that takes it as it commits: a deadlock. Every
    insert of a form takes the lock, so none holds an invoice another
    waits for without holding its lock too."""
    invoice = select(func.pg_advisory_xact_lock(
        bindparam("retailer_id", type_=_FORMS.c.retailer_id.type),
        func.hashtext(bindparam("invoice_number", type_=_FORMS.c.invoice_number.type))
    ).label("locked")).cte("invoice")
    values = {name: bindparam(name, type_=_FORMS.c[name].type) for name in columns}
    # Nothing at all (no counter either) if a form already has the id drawn
    # for this one: the caller draws another.
    free = select(invoice.c.locked).where(~exists().where(_FORMS.c.id == values["id"])).cte("free")
    ctes: tuple = ()
    numbers = None
    if numbering:
        numbers = audit.Numbers.after(free, events=1)
        ctes = numbers.ctes()
    form = (postgresql.insert(_FORMS).from_select(list(values), select(*values.values()).select_from(free))
            .on_conflict_do_nothing(index_elements=[_FORMS.c.retailer_id, _FORMS.c.invoice_number])
            .returning(_FORMS.c.id).cte("issued"))
    # The lines as one JSON value, each column typed in the statement:
    # binding an array per column cost more Python than the form's values.
    rows = func.jsonb_to_recordset(bindparam("lines", type_=postgresql.JSONB)).table_valued(
        *(column(name, _LINES.c[name].type) for name in _LINE_COLUMNS)).render_derived(with_types=True)
    lines = _LINES.insert().from_select(
        ("form_id", *_LINE_COLUMNS), select(form.c.id, *rows.c).select_from(form).join(rows, true())
    ).cte("lines")
    return audit.event_for_each(form, invoice, free, *ctes, lines, numbers=numbers)
# A new form's columns that only later steps fill in.
_NOT_YET = dict(personal_data_removed_at=None, validated_at=None, exit_point_id=None,
                validated_total_cents=None, validated_vat_cents=None, validated_refund_cents=None,
                refunded_cents=None, refunded_at=None, change_seq=None)


def _as_loaded(session: Session, form: Form, lines: list[FormLine], retailer: Retailer) -> Form:
    """``form`` and its ``lines``, just inserted, as persistent objects of
    the session, as if read back (the caller may act on them at once). The
    relationships are set as loaded, not as changes: nothing for the
    session to reconcile at the next flush, no backref events."""
    set_committed_value(form, "retailer", retailer)
    set_committed_value(form, "exit_point", None)
    set_committed_value(form, "lines", lines)
    for line in lines:
        set_committed_value(line, "form", form)
    for obj in (form, *lines):
        make_transient_to_detached(obj)
    session.add(form)
    return form


def _transition(session: Session, form: Form, allowed: tuple[str, ...], values: dict) -> bool:
    """Move ``form`` out of an ``allowed`` status, atomically: False if another
    request changed it first."""
    result = session.execute(
        update(Form)
        .where(Form.id == form.id, Form.status.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.refresh(form)
    return True


def cancel(session: Session, principal: Principal, form: Form, now: datetime) -> Form:
    """Cancel a form that has not been used at an exit point yet."""
    require_retail(principal)
    if not _transition(session, form, ("issued",), {"status": "cancelled", "updated_at": now}):
        session.refresh(form)
        raise Problem(
            409, "form_not_cancellable",
            f"Only an issued form can be cancelled; this one is {form.status}.",
        )
    audit.record(session, form.id, "form.cancelled", principal.actor, at=now)
    return form


def refund(
    session: Session, principal: Principal, form: Form, amount_cents: int, paid_at: datetime, now: datetime
) -> Form:
    """Record that the traveller was paid: only once, only after validation,
    never more than the refund due for the validated goods (their VAT less
    the intermediary's fee)."""
    require_retail(principal)
    if paid_at > now + PAYMENT_CLOCK_SKEW:
        raise Problem(422, "invalid_request", "A refund cannot be paid in the future.",
                      errors={"paid_at": ["Must not be in the future."]})
    due = refund_due(form)
    if form.status in VALIDATED and amount_cents > due:
        raise Problem(
            422, "refund_too_large",
            f"The refund cannot exceed the refund due for the validated goods ({due} cents).",
            errors={"amount_cents": [f"At most {due}."]},
        )
    if not _transition(
        session, form, VALIDATED,
        {"status": "refunded", "refunded_cents": amount_cents, "refunded_at": paid_at, "updated_at": now},
    ):
        session.refresh(form)
        raise Problem(
            409, "form_not_refundable",
            f"Only a validated form can be refunded; this one is {form.status}.",
        )
    audit.record(
        session, form.id, "form.refunded", principal.actor, at=now,
        amount_cents=amount_cents, paid_at=paid_at.isoformat(),
    )
    return form


def refund_due(form: Form) -> int:
    """What the traveller is owed: for the validated goods once validated."""
    return form.validated_refund_cents if form.validated_refund_cents is not None else form.refund_cents


def expire_overdue(session: Session, ruleset: rules.RuleSet, now: datetime, actor: str = "system", *,
                   grace: timedelta) -> list[str]:
    """Mark forms whose export deadline has passed as expired: issued forms
    once the deadline day is over, forms waiting at the customs desk once
    the desk's ``grace`` period after it is over too (their check is closed
    as expired)."""
    today = rules.local_today(now, ruleset.timezone)
    overdue = session.scalars(
        select(Form.id).where(Form.status == "issued", Form.export_deadline < today)
    ).all()
    expired = []
    for form_id in overdue:
        result = session.execute(
            update(Form)
            .where(Form.id == form_id, Form.status == "issued")
            .values(status="expired", updated_at=now)
        )
        if result.rowcount == 1:
            audit.record(session, form_id, "form.expired", actor, at=now)
            expired.append(form_id)
    waiting = session.execute(
        select(Form.id, Form.export_deadline, ExitPoint.code)
        .join(Check, Check.form_id == Form.id)
        .join(ExitPoint, Check.exit_point_id == ExitPoint.id)
        .where(Form.status == "check_required", Check.status == "pending", Form.export_deadline < today)
        .order_by(Form.id)
    ).all()
    for form_id, deadline, exit_point in waiting:
        if now < rules.desk_closes_at(deadline, ruleset.timezone, grace):
            continue
        # The check first, then the form: the order a decision takes them in.
        closed = session.execute(
            update(Check).where(Check.form_id == form_id, Check.status == "pending")
            .values(status="expired", outcome="expired")
        ).rowcount == 1
        if closed and session.execute(
            update(Form).where(Form.id == form_id, Form.status == "check_required")
            .values(status="expired", updated_at=now)
        ).rowcount == 1:
            audit.record(session, form_id, "form.expired", actor, at=now, exit_point=exit_point)
            expired.append(form_id)
    return expired
