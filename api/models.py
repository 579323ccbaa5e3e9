"""The tables: who takes part (exit points, intermediaries, retailers, users,
devices), the forms with their lines, and what happens to them (scans, checks,
audit events). Signing keys and idempotency records support the API."""
from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .database import Base
from .personal_data import EncryptedJSON, EncryptedText


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def held(session, model, id):
    """The ``model`` object with primary key ``id`` that ``session`` already
    holds, or None; never a query. Through the mapper: Session.identity_key
    takes any form of key and costs about ten times more (10 us a call
    measured in a scan, which calls this while its transaction holds the
    counters every writer waits for)."""
    return session.identity_map.get(model.__mapper__.identity_key_from_primary_key((id,)))


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every database.

    SQLite has no time zones: values are stored as naive UTC and come back
    aware, so the code never meets a naive datetime.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# Integer ids that are 64-bit on PostgreSQL and still the rowid on SQLite.
BigId = BigInteger().with_variant(Integer, "sqlite")


class ExitPoint(Base):
    __tablename__ = "exit_points"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2), default="NL")
    desk_location: Mapped[str] = mapped_column(String(300), default="")
    # "HH:MM-HH:MM" in the exit point's local time (the rule set's time
    # zone), e.g. "05:30-23:00" or "22:00-06:00" overnight; None: around the
    # clock. A device that falls silent while its exit point is open is a
    # fault (api/services/fleet.py); at night it is expected.
    opening_hours: Mapped[str | None] = mapped_column(String(11))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        CheckConstraint("kind IN ('airport', 'seaport', 'land')", name="kind"),
    )


class Intermediary(Base):
    __tablename__ = "intermediaries"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The intermediary's fee, in basis points of the VAT, kept from the refund.
    fee_bp: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Retailer(Base):
    __tablename__ = "retailers"
    id: Mapped[int] = mapped_column(primary_key=True)
    vat_number: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(500), default="")
    intermediary_id: Mapped[int | None] = mapped_column(ForeignKey("intermediaries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    intermediary: Mapped[Intermediary | None] = relationship()


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16))
    retailer_id: Mapped[int | None] = mapped_column(ForeignKey("retailers.id"))
    intermediary_id: Mapped[int | None] = mapped_column(ForeignKey("intermediaries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Every access token carries the version it was issued under; disabling
    # the user, a new password or a new role bumps it, and older tokens are
    # refused at once (api/services/users.py).
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A disabled user cannot log in, and their tokens and sessions end.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'retailer', 'intermediary', 'officer')", name="role"
        ),
        CheckConstraint("role != 'retailer' OR retailer_id IS NOT NULL", name="retailer_bound"),
        CheckConstraint(
            "role != 'intermediary' OR intermediary_id IS NOT NULL",
            name="intermediary_bound",
        ),
    )


class Device(Base):
    """A kiosk, tablet or handheld at one exit point; it authenticates with a
    long-lived device token that stops working once the device is revoked."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    exit_point_id: Mapped[int] = mapped_column(ForeignKey("exit_points.id"))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_point: Mapped[ExitPoint] = relationship()
    __table_args__ = (
        CheckConstraint("kind IN ('kiosk', 'tablet', 'handheld')", name="kind"),
    )


class DeviceHeartbeat(Base):
    """The last heartbeat of a device: what the device says about itself
    (app version, offline queue, camera, disk, clock) and when it said it.
    One row per device, overwritten by each heartbeat (api/services/fleet.py)."""

    __tablename__ = "device_heartbeats"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    app_version: Mapped[str] = mapped_column(String(40))
    online_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queue_depth: Mapped[int] = mapped_column(Integer)
    oldest_queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # False: the offline queue could not be written (a full disk); the
    # device sends travellers to the desk while offline.
    queue_writable: Mapped[bool] = mapped_column(Boolean)
    # None: the device has no camera (a handheld scanner only).
    camera_ok: Mapped[bool | None] = mapped_column(Boolean)
    free_disk_bytes: Mapped[int] = mapped_column(BigInteger)
    device_clock: Mapped[datetime] = mapped_column(UTCDateTime)
    # The device's clock minus the server's when the heartbeat arrived:
    # offline scans are dated by the device's clock.
    clock_skew_seconds: Mapped[float] = mapped_column(Float)


class SigningKey(Base):
    """An Ed25519 key that signs QR payloads or access tokens, never both
    (api/keys.py).

    The newest key of a purpose signs; a key verifies, and is published in
    the JWKS, until ``verifies_until`` (open while it signs)."""

    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    # The PKCS8 PEM, encrypted with SIGNING_KEY_ENCRYPTION_KEYS
    # (api/custody.py); erased once the key no longer signs.
    private_key: Mapped[str | None] = mapped_column(Text)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verifies_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        CheckConstraint("purpose IN ('qr', 'access_token')", name="purpose"),
    )


FORM_STATUSES = (
    "issued",
    "check_required",
    "validated",
    "partially_validated",
    "rejected",
    "cancelled",
    "expired",
    "refunded",
)


class Form(Base):
    __tablename__ = "forms"
    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    retailer_id: Mapped[int] = mapped_column(ForeignKey("retailers.id"), index=True)
    # The intermediary that submitted the form, if any.
    intermediary_id: Mapped[int | None] = mapped_column(ForeignKey("intermediaries.id"))
    status: Mapped[str] = mapped_column(String(24), default="issued")
    invoice_number: Mapped[str] = mapped_column(String(64))
    purchase_date: Mapped[date] = mapped_column(Date)
    payment_method: Mapped[str | None] = mapped_column(String(32))
    refund_method: Mapped[str | None] = mapped_column(String(32))
    # The traveller's personal data: None only once removed (personal_data_removed_at).
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    # Encrypted at rest (api/personal_data.py).
    passport_number: Mapped[str | None] = mapped_column(EncryptedText)
    passport_country: Mapped[str] = mapped_column(String(2))
    # Keyed hash of passport country + number: finds a traveller's forms
    # without searching on the number itself.
    passport_key: Mapped[str | None] = mapped_column(String(64), index=True)
    nationality: Mapped[str] = mapped_column(String(2))
    residence_country: Mapped[str] = mapped_column(String(2))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(254))
    # When the retention command removed the fields above, a while after the
    # form's final status (api/services/retention.py); the countries, amounts,
    # lines and status stay for the figures.
    personal_data_removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    total_cents: Mapped[int] = mapped_column(BigInteger)
    vat_cents: Mapped[int] = mapped_column(BigInteger)
    fee_cents: Mapped[int] = mapped_column(BigInteger)
    refund_cents: Mapped[int] = mapped_column(BigInteger)
    # The intermediary's fee in force when the form was issued (basis points
    # of the VAT): a validation at the desk computes the refund with it, not
    # with whatever fee the intermediary charges by then.
    fee_bp: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    export_deadline: Mapped[date] = mapped_column(Date)
    qr_payload: Mapped[str] = mapped_column(Text)
    # The key that signed the QR payload: it must verify until the export
    # deadline has passed (api/keys.py).
    qr_kid: Mapped[str | None] = mapped_column(String(40))
    # Set once a scan or an officer validated the export (fully or in part).
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_point_id: Mapped[int | None] = mapped_column(ForeignKey("exit_points.id"))
    validated_total_cents: Mapped[int | None] = mapped_column(BigInteger)
    validated_vat_cents: Mapped[int | None] = mapped_column(BigInteger)
    validated_refund_cents: Mapped[int | None] = mapped_column(BigInteger)
    refunded_cents: Mapped[int | None] = mapped_column(BigInteger)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The form's place in the change feed, given when the transaction that
    # changed it commits (api/services/changes.py); None only until then.
    change_seq: Mapped[int | None] = mapped_column(BigInteger, unique=True, index=True)

    retailer: Mapped[Retailer] = relationship()
    exit_point: Mapped[ExitPoint | None] = relationship()
    lines: Mapped[list[FormLine]] = relationship(
        order_by="FormLine.line", cascade="all, delete-orphan", back_populates="form"
    )
    __table_args__ = (
        # One tax-free form per invoice of a retailer.
        UniqueConstraint("retailer_id", "invoice_number"),
        CheckConstraint(
            "status IN (%s)" % ", ".join(f"'{s}'" for s in FORM_STATUSES), name="status"
        ),
        CheckConstraint("total_cents > 0 AND vat_cents >= 0 AND refund_cents >= 0", name="money"),
    )


class FormLine(Base):
    __tablename__ = "form_lines"
    form_id: Mapped[str] = mapped_column(ForeignKey("forms.id"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1-based
    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    vat_rate_bp: Mapped[int] = mapped_column(Integer)
    vat_cents: Mapped[int] = mapped_column(BigInteger)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    category: Mapped[str] = mapped_column(String(32))
    serial_number: Mapped[str | None] = mapped_column(String(64))
    # The officer's finding at a physical check; None until checked.
    present: Mapped[bool | None] = mapped_column(Boolean)
    form: Mapped[Form] = relationship(back_populates="lines")
    __table_args__ = (
        CheckConstraint("quantity > 0 AND unit_price_cents > 0", name="positive"),
    )


class Scan(Base):
    """One scan of a QR payload (or passport lookup) at an exit point."""

    __tablename__ = "scans"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    form_id: Mapped[str | None] = mapped_column(ForeignKey("forms.id"), index=True)
    # The kiosk or tablet; None for the traveller's app and the desk.
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
    exit_point_id: Mapped[int] = mapped_column(ForeignKey("exit_points.id"))
    verdict: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    # When the traveller scanned: the device's time for a scan it queued
    # offline and sent later, otherwise when the API received it.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # How the traveller came: a kiosk or tablet, their own phone, or
    # straight to the customs desk.
    channel: Mapped[str] = mapped_column(String(8), default="kiosk", server_default="kiosk")
    # The phone's app install (keyed hash of its install id), for the app channel.
    install_key: Mapped[str | None] = mapped_column(String(64))
    # When the API received the scan.
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Sent later from the device's offline queue (its created_at is the
    # device's word for when it was made).
    queued: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    __table_args__ = (
        CheckConstraint("channel IN ('kiosk', 'app', 'desk')", name="channel"),
        Index("ix_scans_install_recent", "install_key", "created_at"),
        # A device's last live scan: the earliest a scan it queued offline
        # may be dated (api/services/scans.py).
        Index("ix_scans_device_live", "device_id", "received_at",
              postgresql_where=text("NOT queued"), sqlite_where=text("NOT queued")),
    )


class Duty(Base):
    """An officer on duty at one exit point's desk, from signing on until
    signing off, signing on elsewhere, or the longest shift
    (DESK_DUTY_MAX_HOURS). Officers decide only the checks of the exit point
    they are on duty at."""

    __tablename__ = "duties"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    exit_point_id: Mapped[int] = mapped_column(ForeignKey("exit_points.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_point: Mapped[ExitPoint] = relationship()
    __table_args__ = (
        Index("ix_duties_officer_started", "officer_id", "started_at"),
    )


CHECK_STATUSES = ("pending", "decided", "expired")


class Check(Base):
    """A physical check at the customs desk, opened when the risk engine sends
    a traveller there; one per form. It stays in the queue of the exit point
    where the traveller last scanned the form (``exit_point_id``), and is
    closed by an officer's decision or, once the export deadline and the
    desk's grace period are over, by expiry."""

    __tablename__ = "checks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    form_id: Mapped[str] = mapped_column(ForeignKey("forms.id"), unique=True)
    exit_point_id: Mapped[int] = mapped_column(ForeignKey("exit_points.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    fired_rules: Mapped[list] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str | None] = mapped_column(String(24))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    # The officer's duty the decision was made on: where (its exit point)
    # and under which sign-on.
    duty_id: Mapped[int | None] = mapped_column(ForeignKey("duties.id"))
    form: Mapped[Form] = relationship()
    exit_point: Mapped[ExitPoint] = relationship()
    __table_args__ = (
        CheckConstraint("status IN (%s)" % ", ".join(f"'{s}'" for s in CHECK_STATUSES), name="status"),
        # The desk's queue reads pending checks oldest first; decided ones
        # pile up forever and must not slow it down.
        Index("ix_checks_pending_queue", "opened_at", "id",
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
    )


class Event(Base):
    """The audit trail: appended, never updated."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    form_id: Mapped[str | None] = mapped_column(ForeignKey("forms.id"), index=True)
    type: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    exit_point: Mapped[str | None] = mapped_column(String(8))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditLink(Base):
    """The audit trail's hash chains: link ``seq`` of chain ``chain`` seals
    event ``event_id`` with an HMAC over the previous link's hash in that
    chain and the event's stored fields, in the order transactions commit
    (api/services/audit_chain.py). Appended, never updated."""

    __tablename__ = "audit_links"
    # Chain 0 only on SQLite, whose primary key is ``seq`` alone.
    chain: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False, default=0,
                                       server_default="0")
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("events.id"), unique=True)
    hash: Mapped[str] = mapped_column(String(64))


class RefusedReplay(Base):
    """A scan that a device queued while offline and the API refused when it
    was sent (a 4xx other than a device problem), as the device reported it:
    so a supervisor sees it, not only the kiosk's own staff screen.
    No passport number or QR payload: the form id the code named, if any."""

    __tablename__ = "refused_replays"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    exit_point_id: Mapped[int] = mapped_column(ForeignKey("exit_points.id"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    form_id: Mapped[str | None] = mapped_column(String(40))
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refused_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(500))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        # A device reports each refusal until the API has it: once.
        UniqueConstraint("device_id", "idempotency_key"),
        CheckConstraint("kind IN ('qr', 'passport')", name="kind"),
        Index("ix_refused_replays_exit_point", "exit_point_id", "refused_at"),
    )


class IdempotencyRecord(Base):
    """The first response to a request sent with an ``Idempotency-Key``."""

    __tablename__ = "idempotency_records"
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    # Encrypted like passport numbers: a stored POST /forms response is the
    # whole form, traveller included.
    response_body: Mapped[dict] = mapped_column(EncryptedJSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RateLimit(Base):
    """A request counter for one key (e.g. logins from one address) in the
    current fixed window."""

    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger)  # epoch seconds
    hits: Mapped[int] = mapped_column(Integer)


class PortalSession(Base):
    """A browser session of the web pages (retailer portal, supervisor
    dashboard, traveller status page).

    The cookie holds a random token; the table holds only its SHA-256, so a
    copy of the database does not let anyone take over a session. Rows live
    in the database every worker shares, so a session survives across
    gunicorn workers. Anonymous sessions (``user_id`` empty) exist only to
    carry a CSRF token and the chosen language."""

    __tablename__ = "portal_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The earlier of idle timeout and maximum lifetime; expired rows are
    # swept when new sessions start.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# --- integration: webhooks, their outbox, the change feed ----------------------

from sqlalchemy import Index  # noqa: E402  (kept with the tables that use it)

WEBHOOK_DELIVERY_STATUSES = ("pending", "delivered", "failed", "cancelled")


class Webhook(Base):
    """An endpoint of a retailer or an intermediary that is told of status
    changes of its forms (Standard Webhooks). The secret signs every
    delivery; it is shown once, when the webhook is registered."""

    __tablename__ = "webhooks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list] = mapped_column(JSON)
    # Signing needs the secret itself, so it cannot be stored hashed: it is
    # stored encrypted with SIGNING_KEY_ENCRYPTION_KEYS (api/custody.py).
    secret: Mapped[str] = mapped_column(String(255))
    retailer_id: Mapped[int | None] = mapped_column(ForeignKey("retailers.id"), index=True)
    intermediary_id: Mapped[int | None] = mapped_column(ForeignKey("intermediaries.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        CheckConstraint("(retailer_id IS NULL) != (intermediary_id IS NULL)", name="one_owner"),
    )


class WebhookDelivery(Base):
    """The transactional outbox: one event for one webhook, written in the
    transaction that changed the form, then delivered (and retried) by
    ``flask deliver-webhooks``. The body is fixed when the row is written, so
    every attempt sends the same bytes under the same ``webhook-id``."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    event_type: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # Failures since the delivery was last (re)scheduled: drives the backoff.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Retries stop a while (3 days) after this: the event, or a manual retry.
    retry_window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    # A worker that claimed the row sends it before the lease ends; a worker
    # that dies leaves a lease that simply runs out.
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[list[WebhookAttempt]] = relationship(
        order_by="WebhookAttempt.id", back_populates="delivery"
    )
    __table_args__ = (
        CheckConstraint(
            "status IN (%s)" % ", ".join(f"'{s}'" for s in WEBHOOK_DELIVERY_STATUSES), name="status"
        ),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )


class WebhookAttempt(Base):
    """One HTTP request of a delivery and how the receiver answered."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer)
    delivery: Mapped[WebhookDelivery] = relationship(back_populates="attempts")


class ChangeCounter(Base):
    """The last number handed out by a change feed (``forms``) or the audit
    chain (``audit``): taken under a row lock as a transaction commits, so
    numbers follow commit order."""

    __tablename__ = "change_counters"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
    # ``audit``: the hash of link ``value``, the one the next link chains to
    # (api/services/audit_chain.py).
    head_hash: Mapped[str | None] = mapped_column(String(64))


class PairingCode(Base):
    """A one-time code that turns into a device token when a new kiosk or
    handheld scans it; only its hash is stored."""

    __tablename__ = "pairing_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    exit_point_id: Mapped[int] = mapped_column(ForeignKey("exit_points.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))


# --- the traveller's app: where a phone may validate -----------------------------


class ValidationZone(Base):
    """An area of an exit point (GeoJSON Polygon, longitude first) inside
    which the traveller's app may validate."""

    __tablename__ = "validation_zones"
    id: Mapped[int] = mapped_column(primary_key=True)
    exit_point_id: Mapped[int] = mapped_column(ForeignKey("exit_points.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    polygon: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    exit_point: Mapped[ExitPoint] = relationship()
    __table_args__ = (UniqueConstraint("exit_point_id", "name"),)


class SensorPost(Base):
    """A Bluetooth sensor post opposite a customs desk. Its secret derives
    the rotating tokens it broadcasts (shared/presence.py); it is stored
    encrypted with the personal-data keys, so a copy of the database alone
    cannot make tokens."""

    __tablename__ = "sensor_posts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # e.g. "AMS-D1-01"
    exit_point_id: Mapped[int] = mapped_column(ForeignKey("exit_points.id"), index=True)
    secret: Mapped[str] = mapped_column(EncryptedText)  # hex
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_point: Mapped[ExitPoint] = relationship()


class Sailing(Base):
    """A ferry departure from a seaport, for the app's "pick a sailing"."""

    __tablename__ = "sailings"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "HVH-HAR-2026-12-03T22:00" (local time)
    exit_point_id: Mapped[int] = mapped_column(ForeignKey("exit_points.id"))
    operator: Mapped[str] = mapped_column(String(100))
    route: Mapped[str] = mapped_column(String(200))
    destination_port: Mapped[str] = mapped_column(String(100))
    destination_country: Mapped[str] = mapped_column(String(2))
    departs_at: Mapped[datetime] = mapped_column(UTCDateTime)
    exit_point: Mapped[ExitPoint] = relationship()
    __table_args__ = (Index("ix_sailings_departure", "exit_point_id", "departs_at"),)


class AppInstall(Base):
    """A traveller's app install, by a keyed hash of its install id: when it
    first signed in (the "first use" risk rule)."""

    __tablename__ = "app_installs"
    install_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
