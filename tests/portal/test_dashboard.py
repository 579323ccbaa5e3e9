"""The supervisor dashboard's figures, and its SVG charts."""
from __future__ import annotations

import re
from datetime import date, timedelta

from portal_support import item, portal_login

from api.portal import charts


def _row(html: str, code: str) -> list[str]:
    row = re.search(rf'<tr data-exit-point="{code}">(.*?)</tr>', html, re.S).group(1)
    return [c.strip() for c in re.findall(r'<td class="num">(.*?)</td>', row, re.S)]


def _kpi(html: str, name: str) -> str:
    return re.search(rf'id="kpi-{name}">(.*?)</p>', html).group(1)


def test_scans_verdicts_queue_and_rules_per_exit_point(client, world):
    ok = world.issue()
    watch = world.issue("shop", item(125000, category="watches", serial_number="SN-1"))
    phone = world.issue("shop", item(60000, category="electronics", serial_number="SN-2"))
    world.scan("kiosk", ok["qr_payload"])
    world.scan("kiosk", ok["qr_payload"])  # scanned twice: two scans, one form
    world.scan("kiosk", watch["qr_payload"])
    world.scan("rtm-kiosk", phone["qr_payload"])
    world.sign_on("officer2", "RTM")
    decided = world.post("officer2", f"/api/v1/forms/{phone['id']}/decision",
                         {"outcome": "validated", "lines": [{"line": 1, "present": True}]})
    assert decided.status_code == 200, decided.get_json()
    world.scan("kiosk", "not-a-form")
    portal_login(client, "officer")
    html = client.get("/dashboard").get_data(as_text=True)
    # scans, validated, to the desk, refused, queue now, longest wait, median wait
    assert _row(html, "AMS")[:5] == ["4", "2", "1", "1", "1"]
    assert _row(html, "RTM")[:5] == ["1", "0", "1", "0", "0"]
    assert _row(html, "RTM")[6] == "&lt; 1 min"  # decided within the minute
    assert _kpi(html, "scans") == "5" and _kpi(html, "queue") == "1"
    assert re.findall(r'<span class="rule-name">(.*?)</span> <span class="rule-count">(\d+)</span>', html) == [
        ("Watched goods", "2"), ("High value", "1")]
    assert html.count('class="bar series-') >= 4

    ams = client.get("/dashboard?exit_point=AMS").get_data(as_text=True)
    assert _kpi(ams, "scans") == "4"
    assert sorted(re.findall(r'<span class="rule-name">(.*?)</span>', ams)) == ["High value", "Watched goods"]


def test_another_day_has_its_own_figures(client, world):
    world.scan("kiosk", world.issue()["qr_payload"])
    portal_login(client, "officer")
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    html = client.get(f"/dashboard?day={yesterday}").get_data(as_text=True)
    assert _kpi(html, "scans") == "0"
    assert "No scans on this day." in html
    assert 'http-equiv="refresh"' not in html  # only today's page refreshes
    bad = client.get("/dashboard?day=soon").get_data(as_text=True)
    assert "Enter a date like 2026-03-14." in bad and _kpi(bad, "scans") == "1"


def test_the_dashboard_in_dutch(client, world):
    portal_login(client, "officer")
    html = client.get("/dashboard?lang=nl").get_data(as_text=True)
    assert "Uitgangspunten op" in html and "Wachtrij balie nu" in html


def test_nice_ceilings_for_the_axis():
    assert [charts.nice_ceiling(v) for v in (0, 1, 3, 7, 10, 11, 48, 120)] == [1, 1, 5, 10, 10, 20, 50, 200]


def test_stacked_columns_stack_series_upwards_within_the_plot():
    chart = charts.stacked_columns(["00", "01"], [("a", "A", [2, 0]), ("b", "B", [3, 5])], width=200, height=100)
    bars = [(b.series, b.title) for b in chart.bars]
    assert bars == [("a", "00: A 2"), ("b", "00: B 3"), ("b", "01: B 5")]
    first_a, first_b, _ = chart.bars
    assert first_b.y + first_b.height == first_a.y  # b sits on a
    assert all(chart.plot_top <= b.y and b.y + b.height <= chart.plot_bottom + 0.01 for b in chart.bars)
    assert [label for _, label in chart.grid][-1] == "5"  # the axis ends at the nice ceiling of 5


def test_horizontal_bars_scale_to_the_longest_row():
    chart = charts.horizontal_bars([("AMS", [("v", "V", 6), ("r", "R", 2)]), ("RTM", [("v", "V", 4)])], width=400,
                                   label_width=100)
    longest = sum(b.width for b in chart.bars if b.y == chart.bars[0].y)
    assert round(longest) == 400 - 60 - 100
    assert [label.text for label in chart.labels] == ["AMS", "8", "RTM", "4"]
    assert charts.horizontal_bars([]).empty


def _channel_row(html: str, channel: str) -> list[str]:
    row = re.search(rf'<tr data-channel="{channel}">(.*?)</tr>', html, re.S).group(1)
    return [c.strip() for c in re.findall(r'<td class="num">(.*?)</td>', row, re.S)]


def test_scans_and_verdicts_split_by_channel(client, world, app):
    from tests.api.traveller_support import AMS_ZONE, AppWorld

    app_world = AppWorld(world, app)
    app_world.admin("/api/v1/exit-points/AMS/zones", {"name": "Departures 2", "polygon": AMS_ZONE})
    app_world.secrets["AMS-D2-01"] = app_world.admin("/api/v1/exit-points/AMS/sensor-posts",
                                                     {"id": "AMS-D2-01"})["secret"]
    world.scan("kiosk", world.issue()["qr_payload"])
    by_app = [world.issue(), world.issue("shop", item(125000, category="watches", serial_number="SN-1"))]
    app_world.phone().signed_in().verdicts([f["id"] for f in by_app])
    walk_in = world.issue()
    assert world.post("officer", "/api/v1/checks", {"form_id": walk_in["id"]}).status_code == 201
    portal_login(client, "officer")
    html = client.get("/dashboard").get_data(as_text=True)
    # scans, validated, to the desk, refused
    assert _channel_row(html, "kiosk") == ["1", "1", "0", "0"]
    assert _channel_row(html, "app") == ["2", "1", "1", "0"]
    assert _channel_row(html, "desk") == ["1", "0", "1", "0"]
    assert "Traveller&#39;s app" in html or "Traveller's app" in html
    assert re.search(r'<span class="rule-name">Came straight to the desk</span>', html)
