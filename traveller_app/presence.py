"""Evidence that the phone is at the exit point: a GPS fix and the sensor
posts' beacon tokens it saw.

A :class:`PresenceProvider` gathers :class:`Evidence` on demand (off the UI
thread). :class:`SimulatedPresence` stands at a configured place and "sees"
a configured post (desktop and tests); :class:`AndroidPresence` asks the
phone (GPS through plyer, Bluetooth LE scanning through pyjnius), imported
only when it is used, so a desktop never needs either.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol

from shared.presence import beacon_token


@dataclass(frozen=True)
class GpsFix:
    lat: float
    lon: float
    accuracy_m: float
    mock: bool  # Android says the position comes from a mock-location app
    at: datetime


@dataclass(frozen=True)
class BeaconSighting:
    post_id: str
    token: str
    seen_at: datetime
    rssi: int


@dataclass(frozen=True)
class Evidence:
    install_id: str
    gps: GpsFix | None
    beacons: tuple[BeaconSighting, ...] = ()

    def to_json(self) -> dict:
        """The body's ``evidence`` as the contract gives it."""
        return {
            "install_id": self.install_id,
            "gps": None if self.gps is None else {
                "lat": self.gps.lat, "lon": self.gps.lon, "accuracy_m": self.gps.accuracy_m,
                "mock": self.gps.mock, "at": self.gps.at.isoformat(timespec="seconds")},
            "beacons": [{"post_id": b.post_id, "token": b.token, "seen_at": b.seen_at.isoformat(timespec="seconds"),
                         "rssi": b.rssi} for b in self.beacons],
        }


class PresenceProvider(Protocol):
    def evidence(self, install_id: str) -> Evidence:
        """What the phone knows now (may block for a second or two)."""

    def stop(self) -> None:
        """Stop GPS and scanning (the app went to the background)."""

    def start(self) -> None:
        """Start them again (the app is back in the foreground)."""


@dataclass
class SimulatedPresence:
    """A phone standing at ``lat``/``lon`` near post ``post_id`` (whose
    ``secret`` it is given, to make the tokens the post would broadcast).
    ``lat=None`` is a phone with no fix; ``post_id=None`` sees no post.
    Stopped (the app in the background), it has neither, like a phone whose
    sensors are off."""

    lat: float | None = None
    lon: float | None = None
    accuracy_m: float = 8.0
    mock: bool = False
    post_id: str | None = None
    secret: bytes = b""
    seen_seconds_ago: float = 2.0
    rssi: int = -60
    step_seconds: int = 30
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    running: bool = True

    def evidence(self, install_id: str) -> Evidence:
        if not self.running:
            return Evidence(install_id, None)
        now = self.clock()
        gps = None if self.lat is None else GpsFix(self.lat, self.lon, self.accuracy_m, self.mock, now)
        beacons = ()
        if self.post_id:
            seen = now - timedelta(seconds=self.seen_seconds_ago)
            token = beacon_token(self.secret, seen, self.step_seconds, post_id=self.post_id)
            beacons = (BeaconSighting(self.post_id, token, seen, self.rssi),)
        return Evidence(install_id, gps, beacons)

    def stop(self) -> None:
        self.running = False

    def start(self) -> None:
        self.running = True


class AndroidPresence:  # pragma: no cover - runs on a phone only
    """GPS through plyer and beacon tokens from a BLE scan through pyjnius.

    Sensor posts advertise their post id and current token as manufacturer
    data; the scan keeps the newest sighting per post. Needs the runtime
    permissions ACCESS_FINE_LOCATION, BLUETOOTH_SCAN and BLUETOOTH_CONNECT
    (asked for by the app before starting).
    """

    MANUFACTURER_ID = 0xFFFF  # the test id until the posts have one of their own

    def __init__(self):
        from plyer import gps  # noqa: PLC0415 - only on Android

        self._gps = gps
        self._lock = threading.Lock()
        self._fix: GpsFix | None = None
        self._sightings: dict[str, BeaconSighting] = {}
        self._gps.configure(on_location=self._on_location)
        self._gps.start(minTime=1000, minDistance=0)
        self._scanner = self._start_ble_scan()

    def _on_location(self, **kwargs):
        location = self._last_android_location()
        mock = bool(location.isFromMockProvider()) if location is not None else False
        with self._lock:
            self._fix = GpsFix(float(kwargs["lat"]), float(kwargs["lon"]), float(kwargs.get("accuracy", 999)),
                               mock, datetime.now(timezone.utc))

    def _last_android_location(self):
        from jnius import autoclass

        activity = autoclass("org.kivy.android.PythonActivity").mActivity
        Context = autoclass("android.content.Context")
        manager = activity.getSystemService(Context.LOCATION_SERVICE)
        return manager.getLastKnownLocation("gps")

    def _start_ble_scan(self):
        from jnius import PythonJavaClass, autoclass, java_method

        adapter = autoclass("android.bluetooth.BluetoothAdapter").getDefaultAdapter()
        scanner = adapter.getBluetoothLeScanner()
        owner = self

        class Callback(PythonJavaClass):
            __javainterfaces__ = ["org/kivy/android/LeScanCallback"]  # a small Java shim in the APK

            @java_method("(Landroid/bluetooth/le/ScanResult;)V")
            def onScanResult(self, result):
                record = result.getScanRecord()
                data = record.getManufacturerSpecificData(AndroidPresence.MANUFACTURER_ID)
                if data is None:
                    return
                text = bytes(data).decode("ascii", "replace")
                post_id, _, token = text.partition(":")
                with owner._lock:
                    owner._sightings[post_id] = BeaconSighting(post_id, token, datetime.now(timezone.utc),
                                                               int(result.getRssi()))

        self._callback = Callback()
        scanner.startScan(self._callback)
        return scanner

    def evidence(self, install_id: str) -> Evidence:
        with self._lock:
            return Evidence(install_id, self._fix, tuple(self._sightings.values()))

    def stop(self) -> None:
        self._gps.stop()
        self._scanner.stopScan(self._callback)
        with self._lock:  # what was seen before the pause is no evidence of now
            self._fix = None
            self._sightings.clear()

    def start(self) -> None:
        self._gps.start(minTime=1000, minDistance=0)
        self._scanner.startScan(self._callback)
