"""Request and response bodies (marshmallow 4), also the OpenAPI schemas."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import marshmallow as ma
from marshmallow import ValidationError, fields, validate, validates, validates_schema

from shared import countries, money, rules

from . import passwords
from .services.decisions import OUTCOMES, REJECTION_REASONS
from .services.fleet import parse_opening_hours


def storable_text(value: str) -> bool:
    """Text a database can hold: no NUL character, no lone UTF-16 surrogate
    (JSON allows both; PostgreSQL stores neither)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def _refuse_unstorable_text(self, data, **_):
        if isinstance(data, dict):
            bad = {
                key: ["Contains a character that cannot be stored (NUL or a lone surrogate)."]
                for key, value in data.items()
                if isinstance(key, str) and any(
                    isinstance(v, str) and not storable_text(v)
                    for v in (value if isinstance(value, list) else [value])
                )
            }
            if bad:
                raise ValidationError(bad)
        return data


def _country(value: str) -> None:
    if not countries.is_country(value):
        raise ValidationError("Not an ISO 3166-1 alpha-2 country code (e.g. CN, US).")


def Country() -> fields.String:
    return fields.String(required=True, validate=_country, metadata={"example": "CN"})
def Text(max_length: int, *, validate_also=None, **kw) -> fields.String:
    """A non-empty string of at most ``max_length`` characters."""
    validators = [validate.Length(1, max_length)] + ([validate_also] if validate_also else [])
    return fields.String(validate=validators, **kw)

VAT_NUMBER = re.compile(r"^NL[0-9]{9}B[0-9]{2}$")
# Latin letters with diacritics, Latin Extended Additional included (the
# Vietnamese "Nguyễn"): the name as in the passport's visual zone.
LATIN_NAME = re.compile(r"^[A-Za-z\u00C0-\u024F\u1E00-\u1EFF][A-Za-z\u00C0-\u024F\u1E00-\u1EFF '\-.]*$")


def _vat_number(value: str) -> None:
    if not VAT_NUMBER.match(value):
        raise ValidationError("A Dutch VAT number looks like NL123456789B01.")


def _opening_hours(value: str | None) -> None:
    try:
        parse_opening_hours(value)
    except ValueError:
        raise ValidationError("Opening hours look like 05:30-23:00 (or 22:00-06:00 overnight).")


def _latin_name(value: str) -> None:
    if not LATIN_NAME.match(value):
        raise ValidationError("Use the Latin-script name as printed in the passport.")


# --- keys and health ---------------------------------------------------------

class JwksSchema(ma.Schema):
    keys = fields.List(fields.Dict(), metadata={
        "description": "Ed25519 public keys (RFC 8037 OKP JWKs); kid qr-...: QR payloads, at-...: access tokens"})


class HealthSchema(ma.Schema):
    status = fields.String(metadata={"enum": ["ok", "ready"]})


# --- auth ---------------------------------------------------------------------

class TokenRequest(Strict):
    username = Text(100, required=True)
    password = Text(200, required=True, load_only=True)


class TokenResponse(Strict):
    access_token = fields.String()
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer(metadata={"description": "Seconds until the token expires"})


# --- administration -----------------------------------------------------------

class ExitPointSchema(Strict):
    id = fields.Integer(dump_only=True)
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9]{3,8}$"),
                         metadata={"example": "AMS"})
    name = Text(200, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["airport", "seaport", "land"]))
    desk_location = fields.String(validate=validate.Length(0, 300), load_default="")
    opening_hours = fields.String(
        load_default=None, allow_none=True, validate=_opening_hours,
        metadata={"description": "Local opening hours, HH:MM-HH:MM (overnight allowed); "
                                 "null: around the clock", "example": "05:30-23:00"})


class IntermediarySchema(Strict):
    id = fields.Integer(dump_only=True)
    name = Text(200, required=True)
    fee_bp = fields.Integer(load_default=0, validate=validate.Range(0, 10000),
                            metadata={"description": "Fee kept from the refund, in basis points of the VAT"})


def RowId(**kw) -> fields.Integer:
    """The id of a row another field points at (32-bit, as the database stores it)."""
    return fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1), **kw)


class RetailerSchema(Strict):
    id = fields.Integer(dump_only=True)
    vat_number = fields.String(required=True, validate=_vat_number, metadata={"example": "NL859559001B01"})
    name = Text(200, required=True)
    address = fields.String(validate=validate.Length(0, 500), load_default="")
    intermediary_id = RowId(allow_none=True, load_default=None)


class UserCreate(Strict):
    id = fields.Integer(dump_only=True)
    username = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.@-]{3,100}$"))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=200), metadata={
        "description": "At least 12 characters, not a common password, not easy to guess"})
    role = fields.String(required=True, validate=validate.OneOf(["admin", "retailer", "intermediary", "officer"]))
    retailer_id = RowId(allow_none=True, load_default=None)
    intermediary_id = RowId(allow_none=True, load_default=None)
    disabled_at = fields.AwareDateTime(dump_only=True, allow_none=True)

    @validates_schema
    def _strong_password(self, data, **_):
        found = passwords.problems(data.get("password", ""), data.get("username"))
        if found:
            raise ValidationError(found, "password")

    @validates_schema
    def _bound(self, data, **_):
        if data["role"] == "retailer" and not data.get("retailer_id"):
            raise ValidationError("A retailer user belongs to a retailer.", "retailer_id")
        if data["role"] == "intermediary" and not data.get("intermediary_id"):
            raise ValidationError("An intermediary user belongs to an intermediary.", "intermediary_id")


class UserSchema(Strict):
    id = fields.Integer()
    username = fields.String()
    role = fields.String()
    retailer_id = fields.Integer(allow_none=True)
    intermediary_id = fields.Integer(allow_none=True)
    disabled_at = fields.AwareDateTime(allow_none=True)


class PasswordReset(Strict):
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=200), metadata={
        "description": "The new password: at least 12 characters, not a common password"})


class DeviceCreate(Strict):
    name = Text(200, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["kiosk", "tablet", "handheld"]))
    exit_point = fields.String(required=True, metadata={"description": "Exit point code", "example": "AMS"})


class DeviceSchema(Strict):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    exit_point = fields.Function(lambda d: d.exit_point.code)
    created_at = fields.AwareDateTime()
    revoked_at = fields.AwareDateTime(allow_none=True)


class DeviceCreated(DeviceSchema):
    token = fields.String(metadata={"description": "The device token; shown only once"})


class DeviceSelf(Strict):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    exit_point = fields.Nested(ExitPointSchema)


class PairRequest(Strict):
    code = fields.String(required=True, validate=validate.Length(1, 200),
                         metadata={"description": "The one-time code from the pairing QR code"})


# --- the device fleet ---------------------------------------------------------

def _device_time(value) -> None:
    # A device whose clock battery died may say 1970: still a heartbeat
    # worth keeping (its skew is the fault to show). Past 2200, no.
    try:
        utc = value.astimezone(timezone.utc)
    except OverflowError:
        utc = None
    if utc is None or not datetime(1970, 1, 1, tzinfo=timezone.utc) <= utc < datetime(2200, 1, 1, tzinfo=timezone.utc):
        raise ValidationError("Must be a time between 1970 and 2200.")


def DeviceTime(**kw) -> fields.AwareDateTime:
    return fields.AwareDateTime(validate=_device_time, **kw)


class HeartbeatRequest(Strict):
    """What a device says about itself every half minute or so."""

    app_version = Text(40, required=True, metadata={"example": "0.1.0"})
    online_since = DeviceTime(load_default=None, allow_none=True, metadata={
        "description": "When the device last regained contact with the API"})
    queue_depth = fields.Integer(required=True, strict=True, validate=validate.Range(0, 10**9),
                                 metadata={"description": "Items waiting in its offline queue"})
    oldest_queued_at = DeviceTime(load_default=None, allow_none=True, metadata={
        "description": "When the oldest waiting item was queued"})
    queue_writable = fields.Boolean(load_default=True, metadata={
        "description": "False when the offline queue could not be written (disk full)"})
    camera_ok = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "Null for a device without a camera"})
    device_clock = DeviceTime(required=True, metadata={
        "description": "The device's clock when it sent the heartbeat (the API computes the skew)"})
    free_disk_bytes = fields.Integer(required=True, strict=True, validate=validate.Range(0, 2**62))


class FleetReason(Strict):
    code = fields.String(metadata={"enum": ["never_seen", "silent", "queue_depth", "queue_old",
                                            "queue_unwritable", "camera", "disk_low", "clock_skew"]})
    state = fields.String(metadata={"enum": ["amber", "red"]})
    message = fields.String()


class Heartbeat(Strict):
    received_at = fields.AwareDateTime()
    app_version = fields.String()
    online_since = fields.AwareDateTime(allow_none=True)
    queue_depth = fields.Integer()
    oldest_queued_at = fields.AwareDateTime(allow_none=True)
    queue_writable = fields.Boolean()
    camera_ok = fields.Boolean(allow_none=True)
    free_disk_bytes = fields.Integer()
    device_clock = fields.AwareDateTime()
    clock_skew_seconds = fields.Float(metadata={"description": "Device clock minus server clock"})


class FleetDevice(Strict):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    exit_point = fields.String()
    exit_point_open = fields.Boolean(metadata={"description": "Within the exit point's opening hours now"})
    last_seen = fields.AwareDateTime(allow_none=True)
    state = fields.String(metadata={"enum": ["green", "amber", "red"]})
    reasons = fields.List(fields.Nested(FleetReason))
    heartbeat = fields.Nested(Heartbeat, allow_none=True)


# --- forms --------------------------------------------------------------------

class TravellerSchema(Strict):
    first_name = Text(100, required=True, validate_also=_latin_name)
    last_name = Text(100, required=True, validate_also=_latin_name)
    passport_number = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Z0-9]{5,20}$", error="Passport numbers are 5 to 20 capital letters and digits."))
    passport_country = Country()
    nationality = Country()
    residence_country = Country()
    date_of_birth = fields.Date(required=True)
    email = fields.Email(load_default=None, allow_none=True)


class ItemSchema(Strict):
    description = Text(300, required=True)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(1, 10_000))
    unit_price_cents = fields.Integer(required=True, strict=True, validate=validate.Range(1, 100_000_000),
                                      metadata={"description": "Unit price including VAT, in cents"})
    vat_rate = fields.Decimal(required=True, as_string=False, places=None,
                              metadata={"description": "VAT rate in percent, e.g. 21 or 9"})
    category = fields.String(required=True, validate=validate.OneOf(rules.CATEGORIES))
    serial_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))

    @validates("vat_rate")
    def _rate(self, value, **_):
        try:
            money.percent_to_bp(value)
        except ValueError as exc:
            raise ValidationError(str(exc))

    @ma.post_load
    def _basis_points(self, data, **_):
        data["vat_rate_bp"] = money.percent_to_bp(data.pop("vat_rate"))
        return data


class FormCreate(Strict):
    retailer_vat = fields.String(load_default=None, validate=_vat_number,
                                 metadata={"description": "Required for intermediaries"})
    invoice_number = Text(64, required=True)
    purchase_date = fields.Date(required=True)
    payment_method = fields.String(load_default=None, validate=validate.OneOf(["card", "cash", "mobile", "other"]))
    refund_method = fields.String(load_default=None, validate=validate.OneOf(["card", "cash", "bank", "alipay", "wechat", "other"]))
    traveller = fields.Nested(TravellerSchema, required=True)
    items = fields.List(fields.Nested(ItemSchema), required=True, validate=validate.Length(1, 200))


class LineSchema(Strict):
    line = fields.Integer()
    description = fields.String()
    quantity = fields.Integer()
    unit_price_cents = fields.Integer()
    vat_rate = fields.Function(
        lambda l: l.vat_rate_bp // 100 if l.vat_rate_bp % 100 == 0 else l.vat_rate_bp / 100,
        metadata={"description": "VAT rate in percent"},
    )
    vat_cents = fields.Integer()
    total_cents = fields.Integer()
    category = fields.String()
    serial_number = fields.String(allow_none=True)
    present = fields.Boolean(allow_none=True)


def mask_passport(number: str | None) -> str | None:
    if number is None:  # removed after the retention period
        return None
    return "*" * max(len(number) - 3, 0) + number[-3:]


def name_of_traveller(form) -> str | None:
    return None if form.personal_data_removed_at else f"{form.first_name} {form.last_name}"


REMOVED = ("null once the personal data was removed after the retention period "
           "(personal_data_removed_at)")
REMOVED_AT = {"description": "When the traveller's name, passport number and date of birth were "
                             "removed, a while after the form's final status; null while they are kept"}


class TravellerOut(Strict):
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    passport_number = fields.String(allow_none=True)
    passport_country = fields.String()
    nationality = fields.String()
    residence_country = fields.String()
    date_of_birth = fields.Date(allow_none=True)
    email = fields.String(allow_none=True)


# Made once: making a schema copies its fields, which costs more than a dump.
_TRAVELLER_OUT = TravellerOut()


class FormSchema(Strict):
    id = fields.String(metadata={"example": "NL7KQ3X9PD"})
    status = fields.String()
    retailer_vat = fields.Function(lambda f: f.retailer.vat_number)
    retailer_name = fields.Function(lambda f: f.retailer.name)
    invoice_number = fields.String()
    purchase_date = fields.Date()
    payment_method = fields.String(allow_none=True)
    refund_method = fields.String(allow_none=True)
    traveller = fields.Function(lambda f: _TRAVELLER_OUT.dump(f), metadata={
        "description": "The traveller; first_name, last_name, passport_number, date_of_birth and email are "
                       + REMOVED})
    personal_data_removed_at = fields.AwareDateTime(allow_none=True, metadata=REMOVED_AT)
    items = fields.List(fields.Nested(LineSchema), attribute="lines")
    currency = fields.String()
    total_cents = fields.Integer()
    vat_cents = fields.Integer()
    fee_cents = fields.Integer()
    refund_cents = fields.Integer()
    export_deadline = fields.Date()
    qr_payload = fields.String()
    exit_point = fields.Function(lambda f: f.exit_point.code if f.exit_point else None)
    validated_at = fields.AwareDateTime(allow_none=True)
    validated_total_cents = fields.Integer(allow_none=True)
    validated_vat_cents = fields.Integer(allow_none=True)
    validated_refund_cents = fields.Integer(allow_none=True)
    refunded_cents = fields.Integer(allow_none=True)
    refunded_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class FormSummary(Strict):
    """A form in a list: the passport number is masked."""

    id = fields.String()
    status = fields.String()
    retailer_vat = fields.Function(lambda f: f.retailer.vat_number)
    invoice_number = fields.String()
    purchase_date = fields.Date()
    traveller_name = fields.Function(name_of_traveller, metadata={"description": "The traveller's name; " + REMOVED})
    passport_number = fields.Function(lambda f: mask_passport(f.passport_number),
                                      metadata={"description": "Masked; " + REMOVED})
    total_cents = fields.Integer()
    vat_cents = fields.Integer()
    refund_cents = fields.Integer()
    export_deadline = fields.Date()
    exit_point = fields.Function(lambda f: f.exit_point.code if f.exit_point else None)
    updated_at = fields.AwareDateTime()
    personal_data_removed_at = fields.AwareDateTime(allow_none=True, metadata=REMOVED_AT)


class PageArgs(Strict):
    """The query of every list: where to continue, and how many at most."""

    cursor = fields.String(metadata={"description": "next_cursor of the previous page"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class FormListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(
        ["issued", "check_required", "validated", "partially_validated", "rejected",
         "cancelled", "expired", "refunded"]))
    updated_since = fields.AwareDateTime(metadata={"description": "ISO 8601 with offset"})


class RefundRequest(Strict):
    amount_cents = fields.Integer(required=True, strict=True, validate=validate.Range(1, 100_000_000))
    paid_at = fields.AwareDateTime(required=True)


class EventSchema(Strict):
    id = fields.Integer()
    type = fields.String()
    at = fields.AwareDateTime()
    actor = fields.String()
    exit_point = fields.String(allow_none=True)
    data = fields.Dict()


# --- scans and checks ---------------------------------------------------------

SCANNED_AT = {"description": "For a queued scan: when the device made it, offline (at most 14 days "
                            "ago, not before the form was issued, not before the device's last live "
                            "scan); the deadline is judged at that moment. Ignored on a live scan"}
QUEUED = {"description": "True for a scan the device made offline and sends now from its queue, with "
                         "scanned_at and the Idempotency-Key of its first attempt. A device sends its "
                         "whole queue before it scans live again"}


class _Replayable(Strict):
    scanned_at = fields.AwareDateTime(load_default=None, metadata=SCANNED_AT)
    queued = fields.Boolean(load_default=False, metadata=QUEUED)

    @validates_schema
    def _dated_if_queued(self, data, **_):
        if data.get("queued") and data.get("scanned_at") is None:
            raise ValidationError("A queued scan says when it was made.", "scanned_at")


class ScanRequest(_Replayable):
    qr_payload = fields.String(required=True, validate=validate.Length(1, 4096))


class PassportScanRequest(_Replayable):
    """A passport read at the exit point: every open form of its holder."""

    passport_number = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Z0-9]{5,20}$", error="Passport numbers are 5 to 20 capital letters and digits."))
    passport_country = Country()


class RefusedReplayReport(Strict):
    """A scan this device queued offline that the API refused when it was sent."""

    idempotency_key = fields.String(required=True, validate=validate.Length(1, 255))
    kind = fields.String(required=True, validate=validate.OneOf(["qr", "passport"]))
    form_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40), metadata={
        "description": "The form number the QR code named, if any; never a passport number"})
    scanned_at = fields.AwareDateTime(load_default=None, allow_none=True)
    refused_at = fields.AwareDateTime(required=True)
    status = fields.Integer(required=True, validate=validate.Range(400, 499))
    code = fields.String(required=True, validate=validate.Length(1, 64))
    detail = fields.String(load_default="", validate=validate.Length(max=500))


class RefusedReplays(Strict):
    items = fields.List(fields.Nested(RefusedReplayReport), required=True, validate=validate.Length(max=100))


class RefusedReplaysRecorded(Strict):
    recorded = fields.Integer(metadata={"description": "How many of the reports were new"})


class ScanResponse(Strict):
    form_id = fields.String(allow_none=True)
    verdict = fields.String(metadata={"enum": ["validated", "check_required", "refused"]})
    reason_code = fields.String(allow_none=True)
    message = fields.String()
    export_deadline = fields.String(allow_none=True)
    desk_location = fields.String(allow_none=True)
    payer = fields.String(allow_none=True, metadata={
        "description": "Who pays the refund (intermediary or shop), when validated"})


class PassportLookup(Strict):
    passport_number = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Z0-9]{5,20}$", error="Passport numbers are 5 to 20 capital letters and digits."))
    passport_country = Country()


class PassportScanResponse(Strict):
    items = fields.List(fields.Nested(ScanResponse), metadata={
        "description": "One verdict per open form, oldest first; empty when the passport has none"})


class CheckListArgs(PageArgs):
    exit_point = fields.String()
    officer = fields.String(validate=validate.OneOf(["me"]),
                            metadata={"description": "`me`: only checks the caller decided (history)"})
    decided_since = fields.AwareDateTime(metadata={"description": "Only checks decided since then"})
    status = fields.String(load_default="pending", validate=validate.OneOf(["pending", "decided", "expired"]))


class CheckSchema(Strict):
    id = fields.Integer()
    form_id = fields.String()
    status = fields.String()
    exit_point = fields.Function(lambda c: c.exit_point.code)
    opened_at = fields.AwareDateTime()
    fired_rules = fields.List(fields.Dict())
    traveller_name = fields.Function(lambda c: name_of_traveller(c.form),
                                     metadata={"description": "The traveller's name; " + REMOVED})
    passport_number = fields.Function(lambda c: mask_passport(c.form.passport_number),
                                      metadata={"description": "Masked; " + REMOVED})
    passport_country = fields.Function(lambda c: c.form.passport_country)
    total_cents = fields.Function(lambda c: c.form.total_cents)
    line_count = fields.Function(lambda c: c.line_count)  # counted by the queue's query
    outcome = fields.String(allow_none=True)
    decided_at = fields.AwareDateTime(allow_none=True)
    officer_id = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True, metadata={
        "description": "The officer's note on the decision; null without one, and once the form's "
                       "personal data was removed (it may name the traveller)"})
    # Groups a traveller's forms in the desk's queue without showing the passport.
    traveller_ref = fields.Function(lambda c: c.form.passport_key[:12] if c.form.passport_key else None,
                                    metadata={"description": "Groups a traveller's forms; " + REMOVED})


class DutyRequest(Strict):
    exit_point = fields.String(required=True, validate=validate.Length(1, 8),
                               metadata={"description": "Code of the exit point whose desk you work at",
                                         "example": "AMS"})


class DutySchema(Strict):
    """An officer on duty at an exit point's desk."""

    id = fields.Integer()
    exit_point = fields.Nested(ExitPointSchema)
    started_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime(metadata={
        "description": "When the duty ends unless the officer signs off or on elsewhere first"})


class DecisionLine(Strict):
    line = fields.Integer(required=True, strict=True, validate=validate.Range(1, 10_000))
    present = fields.Boolean(required=True)


class DecisionRequest(Strict):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    lines = fields.List(fields.Nested(DecisionLine), load_default=None, validate=validate.Length(0, 200))
    reason_code = fields.String(load_default=None, validate=validate.OneOf(REJECTION_REASONS))
    note = fields.String(load_default=None, validate=validate.Length(0, 2000))
    decided_at = fields.AwareDateTime(load_default=None, metadata={
        "description": "When a handheld that was offline made the decision (at most 14 days ago); "
                       "the export deadline and the officer's duty are judged at that moment"})


# --- pagination ---------------------------------------------------------------

def page_of(item_schema):
    """One envelope for every list: items and the cursor of the next page."""
    return type(
        f"{item_schema.__name__}Page",
        (Strict,),
        {
            "items": fields.List(fields.Nested(item_schema)),
            "next_cursor": fields.String(allow_none=True),
        },
    )


# --- integration: bulk submission, change feed, webhooks, traveller status -----

import json  # noqa: E402

from . import pagination  # noqa: E402
from .services.webhooks import EVENT_TYPES as WEBHOOK_EVENTS  # noqa: E402

FORMS_BATCH_MAX = 500


class _CheckedLater(fields.Nested):
    """Documented as the nested schema, loaded as sent: the view checks each
    item on its own, so a malformed form gets its own 422 instead of failing
    the whole batch."""

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        return value


class FormBatchRequest(Strict):
    forms = fields.List(
        _CheckedLater(FormCreate), required=True, validate=validate.Length(1, FORMS_BATCH_MAX),
        metadata={"description": f"1 to {FORMS_BATCH_MAX} forms, each as for POST /forms"},
    )


class FormBatchItem(Strict):
    index = fields.Integer(metadata={"description": "Position of the form in the request, from 0"})
    status = fields.Integer(metadata={"description": "201, or the status of the problem"})
    body = fields.Dict(metadata={
        "description": "The form as POST /forms returns it, or a problem document",
        "oneOf": [{"$ref": "#/components/schemas/Form"}, {"$ref": "#/components/schemas/Problem"}],
    })


class FormBatchResponse(Strict):
    items = fields.List(fields.Nested(FormBatchItem))


class FormChange(FormSummary):
    """A form in the list, with its place in the change feed."""

    cursor = fields.Function(
        lambda f: pagination.encode(f.change_seq) if f.change_seq is not None else None,
        metadata={"description": "Pass as cursor to list the changes after this one"},
    )


class WebhookCreate(Strict):
    url = fields.String(required=True, validate=validate.Length(1, 2000),
                        metadata={"example": "https://refunds.example.com/taxfree/webhooks"})
    events = fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)), required=True,
        validate=validate.Length(1, len(WEBHOOK_EVENTS)),
        metadata={"description": "The status changes to be told of"},
    )


class WebhookSchema(Strict):
    id = fields.String(metadata={"example": "wh_4f1c2a9e0b7d3c5a8e61"})
    url = fields.String()
    events = fields.List(fields.String())
    created_at = fields.AwareDateTime()


class WebhookCreated(WebhookSchema):
    secret = fields.String(metadata={
        "description": "Signs every delivery (Standard Webhooks, whsec_ + base64); shown only once"})


class WebhookListArgs(PageArgs):
    """A page of webhooks."""


class WebhookAttemptSchema(Strict):
    attempted_at = fields.AwareDateTime()
    status_code = fields.Integer(allow_none=True, metadata={"description": "The receiver's answer, if any"})
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer()


class WebhookDeliverySchema(Strict):
    id = fields.Integer()
    event_type = fields.String(metadata={"enum": list(WEBHOOK_EVENTS)})
    message_id = fields.String(metadata={"description": "The webhook-id header: the same on every attempt"})
    status = fields.String(metadata={"enum": ["pending", "delivered", "failed", "cancelled"]})
    attempt_count = fields.Integer()
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime()
    payload = fields.Function(lambda d: json.loads(d.payload), metadata={"description": "The body sent"})
    attempts = fields.List(fields.Nested(WebhookAttemptSchema))


class WebhookDeliveryListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(["pending", "delivered", "failed", "cancelled"]))


class WebhookEventData(Strict):
    form_id = fields.String()
    status = fields.String()
    at = fields.AwareDateTime()
    exit_point = fields.String(allow_none=True)
    retailer_vat = fields.String()
    invoice_number = fields.String()
    currency = fields.String()
    total_cents = fields.Integer()
    vat_cents = fields.Integer()
    refund_cents = fields.Integer()
    export_deadline = fields.Date()
    validated_at = fields.AwareDateTime(allow_none=True)
    validated_total_cents = fields.Integer(allow_none=True)
    validated_vat_cents = fields.Integer(allow_none=True)
    validated_refund_cents = fields.Integer(allow_none=True)
    refunded_cents = fields.Integer(allow_none=True)
    refunded_at = fields.AwareDateTime(allow_none=True)
    reason_code = fields.String(allow_none=True)
    lines = fields.List(fields.Dict(), metadata={
        "description": "line, description, quantity, total_cents, vat_cents, validated (true/false, "
                       "null while undecided)"})


class WebhookEvent(Strict):
    """The body of a webhook delivery."""

    type = fields.String(metadata={"enum": list(WEBHOOK_EVENTS)})
    timestamp = fields.AwareDateTime()
    data = fields.Nested(WebhookEventData)


class StatusLookup(Strict):
    last_name = Text(100, required=True, metadata={"description": "The traveller's last name, as on the form"})


class TravellerStatus(Strict):
    """What a traveller may see of a form: no personal data."""

    form_id = fields.String()
    status = fields.String()
    export_deadline = fields.Date()
    next_step = fields.String(metadata={"description": "What to do now, in plain English"})
    exit_point = fields.String(allow_none=True)
    validated_at = fields.AwareDateTime(allow_none=True)
    refund_cents = fields.Integer(metadata={"description": "The refund due once validated"})
    refunded_at = fields.AwareDateTime(allow_none=True)
    paid_by = fields.String(metadata={"description": "Who pays the refund"})


# --- the traveller's app --------------------------------------------------------

PASSPORT_NUMBER = validate.Regexp(r"^[A-Z0-9]{5,20}$", error="Passport numbers are 5 to 20 capital letters and digits.")
INSTALL_ID = validate.Regexp(r"^[A-Za-z0-9-]{8,64}$", error="The app install's id: 8 to 64 letters, digits and dashes.")


class TravellerSessionRequest(Strict):
    passport_number = fields.String(required=True, validate=PASSPORT_NUMBER, load_only=True)
    passport_country = Country()
    date_of_birth = fields.Date(required=True, load_only=True)
    install_id = fields.String(required=True, validate=INSTALL_ID,
                               metadata={"description": "A random id (uuid4) the app made when installed"})


class TravellerForm(Strict):
    """A form as its traveller sees it in the app: no passport number, name
    or date of birth (the app knows them)."""

    id = fields.String(metadata={"example": "NL7KQ3X9PD"})
    shop = fields.Function(lambda f: f.retailer.name)
    purchase_date = fields.Date()
    goods = fields.Function(lambda f: [line.description for line in f.lines],
                            metadata={"description": "What was bought, line by line"})
    total_cents = fields.Integer()
    refund_cents = fields.Function(
        lambda f: f.validated_refund_cents if f.validated_refund_cents is not None else f.refund_cents,
        metadata={"description": "The refund due (of the goods validated, once validated)"})
    currency = fields.String()
    export_deadline = fields.Date()
    status = fields.String()
    payer = fields.Function(lambda f: f.retailer.intermediary.name if f.retailer.intermediary else f.retailer.name,
                            metadata={"description": "Who pays the refund"})
    exit_point = fields.Function(lambda f: f.exit_point.code if f.exit_point else None)
    validated_at = fields.AwareDateTime(allow_none=True)
    refunded_at = fields.AwareDateTime(allow_none=True)


class TravellerFormList(Strict):
    items = fields.List(fields.Nested(TravellerForm), metadata={
        "description": "Open forms, and forms decided in the last 90 days, newest first"})


class ClaimRequest(Strict):
    qr_payload = fields.String(required=True, validate=validate.Length(1, 4096))


class ZoneOut(Strict):
    name = fields.String()
    polygon = fields.Dict(metadata={"description": "GeoJSON Polygon, [longitude, latitude] positions"})


class SailingOut(Strict):
    id = fields.String(metadata={"example": "HVH-HAR-2026-12-03T22:00"})
    operator = fields.String()
    route = fields.String()
    destination_port = fields.String()
    destination_country = fields.String()
    departs_at = fields.AwareDateTime()


class TravellerExitPoint(Strict):
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    desk_location = fields.String()
    zones = fields.List(fields.Nested(ZoneOut))
    posts = fields.List(fields.String(), metadata={"description": "Sensor post ids (never their secrets)"})
    sailings = fields.List(fields.Nested(SailingOut), metadata={
        "description": "Seaports: today's sailings not yet departed (local day)"})


class TravellerExitPointList(Strict):
    items = fields.List(fields.Nested(TravellerExitPoint))


class GpsEvidence(Strict):
    lat = fields.Float(required=True, validate=validate.Range(-90, 90), allow_nan=False)
    lon = fields.Float(required=True, validate=validate.Range(-180, 180), allow_nan=False)
    accuracy_m = fields.Float(required=True, validate=validate.Range(0, 1_000_000), allow_nan=False)
    mock = fields.Boolean(required=True, metadata={"description": "The phone says the location is simulated"})
    at = fields.AwareDateTime(required=True)


class BeaconEvidence(Strict):
    post_id = fields.String(required=True, validate=validate.Length(1, 32))
    token = fields.String(required=True, validate=validate.Length(1, 64))
    seen_at = fields.AwareDateTime(required=True)
    rssi = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(-200, 20))


class PresenceEvidence(Strict):
    install_id = fields.String(required=True, validate=INSTALL_ID)
    gps = fields.Nested(GpsEvidence, required=True, allow_none=True, metadata={"description": "null: no fix"})
    beacons = fields.List(fields.Nested(BeaconEvidence), load_default=list, validate=validate.Length(0, 20))


class TripSchema(Strict):
    kind = fields.String(required=True, validate=validate.OneOf(["flight", "ferry"]))
    boarding_pass = fields.String(validate=validate.Length(1, 2000),
                                  metadata={"description": "flight: the boarding pass bar code's text (IATA BCBP)"})
    sailing = fields.String(validate=validate.Length(1, 40),
                            metadata={"description": "ferry: a sailing id from GET /traveller/exit-points"})

    @validates_schema
    def _one_trip(self, data, **_):
        if data["kind"] == "flight" and not data.get("boarding_pass"):
            raise ValidationError("A flight needs the boarding pass.", "boarding_pass")
        if data["kind"] == "ferry" and not data.get("sailing"):
            raise ValidationError("A ferry trip needs the sailing.", "sailing")


class ValidationRequest(Strict):
    exit_point = fields.String(required=True, validate=validate.Length(1, 8), metadata={"example": "AMS"})
    form_ids = fields.List(fields.String(validate=validate.Length(1, 20)), required=True,
                           validate=validate.Length(1, 50))
    evidence = fields.Nested(PresenceEvidence, required=True)
    trip = fields.Nested(TripSchema, load_default=None, allow_none=True)


class ValidationItem(Strict):
    form_id = fields.String(allow_none=True)
    verdict = fields.String(metadata={"enum": ["validated", "check_required", "refused"]})
    reason_code = fields.String(allow_none=True)
    message = fields.String()
    reference = fields.String(allow_none=True, metadata={"description": "validated: a short reference to show"})
    desk_location = fields.String(allow_none=True, metadata={"description": "check_required: where the desk is"})
    export_deadline = fields.String(allow_none=True)


class ValidationResponse(Strict):
    items = fields.List(fields.Nested(ValidationItem))
    desk_pass = fields.String(allow_none=True, metadata={
        "description": "When a form must be checked: the code to show the officer as a QR code (short-lived)"})


class DeskPassResponse(Strict):
    desk_pass = fields.String()
    expires_in = fields.Integer()


class DeskPassRequest(Strict):
    desk_pass = fields.String(required=True, validate=validate.Length(1, 4096))


class DeskCheck(Strict):
    status = fields.String()
    exit_point = fields.Function(lambda c: c.exit_point.code)
    opened_at = fields.AwareDateTime()
    fired_rules = fields.List(fields.Dict())


_DESK_CHECK = DeskCheck()


class DeskForm(FormSchema):
    check = fields.Function(lambda f: _DESK_CHECK.dump(f.desk_check) if getattr(f, "desk_check", None) else None,
                            metadata={"description": "The form's check at the desk, with the rules that "
                                                     "sent it there; null without one"})


class DeskFormList(Strict):
    items = fields.List(fields.Nested(DeskForm))


class OpenCheckRequest(Strict):
    """The check is opened at the exit point the officer is on duty at."""

    form_id = fields.String(required=True, validate=validate.Length(1, 20))


# --- administration of zones, sensor posts, sailings --------------------------------

class ZoneCreate(Strict):
    id = fields.Integer(dump_only=True)
    name = Text(100, required=True)
    polygon = fields.Dict(required=True, metadata={"description": "GeoJSON Polygon, [longitude, latitude]"})
    created_at = fields.AwareDateTime(dump_only=True)


class SensorPostCreate(Strict):
    id = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9][A-Z0-9-]{2,31}$"),
                       metadata={"example": "AMS-D1-01"})


class SensorPostSchema(Strict):
    id = fields.String()
    exit_point = fields.Function(lambda p: p.exit_point.code)
    created_at = fields.AwareDateTime()
    retired_at = fields.AwareDateTime(allow_none=True)


class SensorPostCreated(SensorPostSchema):
    secret = fields.String(metadata={"description": "32 bytes, hex: load it into the post; shown only once"})


class SailingCreate(Strict):
    operator = Text(100, required=True)
    route = Text(200, required=True)
    destination_port = Text(100, required=True)
    destination_code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"),
                                     metadata={"example": "HAR"})
    destination_country = Country()
    departs_at = fields.AwareDateTime(required=True)
