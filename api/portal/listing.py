"""The forms list: filters, a page of forms, CSV.

Status and dates travel in the query string (links and bookmarks keep
them); the search text, often a traveller's last name, does not: addresses
end up in browser history, proxies' logs and Referer headers, so the search
is kept in the server-side session (``SEARCH_KEY``) instead."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from shared import formid

from ..auth import Principal
from ..models import FORM_STATUSES, Form
from ..schemas import mask_passport
from ..services import forms
from .i18n import gettext as _

PAGE_SIZE = 25
SEARCH_KEY = "forms_search"
SEARCH_MAX = 100


@dataclass
class Filters:
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    page: int = 1
    errors: dict[str, list[str]] = field(default_factory=dict)

    def query_args(self, **overrides) -> dict[str, str]:
        """The filters as query-string arguments (for links and the CSV);
        never the search text, which stays in the session."""
        args = {
            "status": self.status,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "page": str(self.page) if self.page > 1 else "",
        }
        args.update({k: str(v) for k, v in overrides.items()})
        return {k: v for k, v in args.items() if v}


def _date(args, name: str, filters: Filters) -> date | None:
    text = (args.get(name) or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        filters.errors[name] = [_("Enter a date like 2026-03-14.")]
        return None


def search_text(text: str | None) -> str:
    return (text or "").strip()[:SEARCH_MAX]


def read_filters(args, search: str = "") -> Filters:
    """The filters of the query string ``args``, and the search text kept
    in the session."""
    filters = Filters()
    status = args.get("status", "")
    filters.status = status if status in FORM_STATUSES else ""
    filters.date_from = _date(args, "from", filters)
    filters.date_to = _date(args, "to", filters)
    filters.q = search_text(search)
    page = args.get("page", "1")
    filters.page = max(1, int(page)) if page.isdigit() and len(page) < 7 else 1
    return filters


def filtered(principal: Principal, filters: Filters) -> Select:
    """The forms ``principal`` may see that match ``filters``, newest first."""
    query = forms.visible_forms(principal)
    if filters.status:
        query = query.where(Form.status == filters.status)
    if filters.date_from:
        query = query.where(Form.purchase_date >= filters.date_from)
    if filters.date_to:
        query = query.where(Form.purchase_date <= filters.date_to)
    if filters.q:
        # Invoice number or traveller's last name, in any case, anywhere in
        # the text; a typed form id matches exactly.
        query = query.where(or_(
            Form.invoice_number.icontains(filters.q, autoescape=True),
            Form.last_name.icontains(filters.q, autoescape=True),
            Form.id == formid.normalize_form_id(filters.q),
        ))
    return query.order_by(Form.created_at.desc(), Form.id.desc())


@dataclass
class Page:
    items: list[Form]
    total: int
    number: int
    pages: int


def page_of(session: Session, query: Select, number: int, size: int = PAGE_SIZE) -> Page:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    pages = max(1, -(-total // size))
    number = min(number, pages)
    items = session.scalars(query.offset((number - 1) * size).limit(size)).all()
    return Page(list(items), total, number, pages)


# --- CSV ----------------------------------------------------------------------

CSV_COLUMNS = (
    "form_id", "status", "invoice_number", "purchase_date", "first_name", "last_name",
    "passport_number", "passport_country", "residence_country", "total_eur", "vat_eur",
    "refund_eur", "export_deadline", "exit_point", "validated_at", "refunded_eur", "refunded_at",
    # Set once the traveller's name and passport were removed (the cells are then empty).
    "personal_data_removed_at",
)


def _eur(cents: int | None) -> str:
    if cents is None:
        return ""
    return f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _cell(value) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ (or
    a tab or carriage return) is a formula to Excel, so it gets a leading
    apostrophe (OWASP's advice on CSV injection)."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def csv_rows(session: Session, query: Select) -> Iterator[str]:
    """The CSV export, line by line; the passport number is masked as in the list."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    # A byte-order mark, so spreadsheet programs read the names as UTF-8.
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + flush()
    rows = session.scalars(query.options(selectinload(Form.exit_point)))
    for f in rows:
        writer.writerow([_cell(v) for v in (
            f.id, f.status, f.invoice_number, f.purchase_date.isoformat(), f.first_name, f.last_name,
            mask_passport(f.passport_number), f.passport_country, f.residence_country,
            _eur(f.total_cents), _eur(f.vat_cents), _eur(f.refund_cents), f.export_deadline.isoformat(),
            f.exit_point.code if f.exit_point else "",
            f.validated_at.isoformat() if f.validated_at else "",
            _eur(f.refunded_cents), f.refunded_at.isoformat() if f.refunded_at else "",
            f.personal_data_removed_at.isoformat() if f.personal_data_removed_at else "",
        )])
        yield flush()
