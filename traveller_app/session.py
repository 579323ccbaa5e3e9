"""What the app does for the traveller, without any user interface: keep
the passport, fetch and add forms, ask for validation. Every method may
wait on the network: the app calls them on worker threads
(``kivy_common.background``); tests call them directly.

The rule that matters most: nothing is ever shown as validated without the
API's answer. Offline, a validation is not queued for later (a phone is not
a kiosk: its evidence is only good now, here); the traveller is told to use
a kiosk or the customs desk instead.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone

from shared.client import ApiError, Offline
from shared.traveller_client import Form, TravellerClient, ValidationResult

from .gate import Gate, validation_gate
from .presence import PresenceProvider
from .trip import Trip
from .wallet import Passport, Wallet


@dataclass(frozen=True)
class Refreshed:
    forms: list[Form]
    online: bool


class TravellerSession:
    def __init__(self, wallet: Wallet, client: TravellerClient, presence: PresenceProvider):
        self.wallet = wallet
        self.client = client
        self.presence = presence
        if wallet.passport is not None:
            self.client.use(wallet.passport.credentials)

    # --- passport ----------------------------------------------------------------

    def give_passport(self, passport: Passport) -> Refreshed:
        """Keep the passport (on disk first), then fetch its forms if the API
        can be reached."""
        self.wallet.keep_passport(passport)
        self.wallet.keep_forms([])
        self.client.use(passport.credentials)
        return self.refresh()

    def refresh(self) -> Refreshed:
        """The passport's forms and the exit points from the API, kept on the
        phone; offline, what the phone kept."""
        try:
            forms = self.client.forms()
            points = self.client.exit_points()
        except Offline:
            return Refreshed(self.wallet.forms, False)
        # Forms added by QR code stay listed even if the API's list lags.
        listed = {f.id for f in forms}
        forms += [f for f in self.wallet.forms if f.id not in listed and f.open]
        self.wallet.keep_forms(forms)
        self.wallet.keep_exit_points(points)
        return Refreshed(forms, True)

    def claim(self, qr_payload: str) -> Form:
        """Add a form by its QR code (ApiError ``passport_mismatch`` if the
        shop registered it to another passport)."""
        form = self.client.claim(qr_payload.strip())
        self.wallet.keep_form(form)
        return form

    # --- trip ------------------------------------------------------------------

    def keep_trip(self, trip: Trip | None) -> None:
        self.wallet.keep_trip(trip.to_json() if trip else None)

    # --- validating ------------------------------------------------------------

    def gate(self, now: datetime | None = None) -> Gate:
        evidence = self.presence.evidence(self.wallet.install_id)
        return validation_gate(evidence, self.wallet.exit_points, now or datetime.now(timezone.utc))

    def validate(self, form_ids: list[str], trip: Trip | None) -> ValidationResult:
        """Send the chosen forms with fresh evidence. Raises Offline when the
        API cannot answer (then nothing is validated) and ApiError when it
        refuses the request as a whole."""
        evidence = self.presence.evidence(self.wallet.install_id)
        gate = validation_gate(evidence, self.wallet.exit_points, datetime.now(timezone.utc))
        if not gate.open:
            raise ApiError(409, "not_in_zone", gate.reason)
        result = self.client.validate(gate.exit_point.code, form_ids, evidence.to_json(),
                                      trip.api_trip() if trip else None, str(uuid.uuid4()))
        self.wallet.keep_last_result({
            "exit_point": gate.exit_point.code,
            "desk_location": gate.exit_point.desk_location,
            "desk_pass": result.desk_pass,
            "verdicts": [v.__dict__ | {"export_deadline": v.export_deadline.isoformat() if v.export_deadline
                                       else None} for v in result.verdicts]})
        try:
            self.refresh()
        except ApiError:
            pass
        return result

    def desk_pass(self) -> str:
        return self.client.desk_pass()

    def forget(self) -> None:
        self.client.forget()
        self.wallet.forget()


def today() -> date:
    return datetime.now(timezone.utc).date()
