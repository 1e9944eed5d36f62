"""The app controller without Kivy: a SimulatedLink feeds protocol events,
frames and states; the store is real (SQLite in tmp_path)."""

import asyncio
import json
import logging
import os
import stat
import time

import pytest

import protocol as P
import protocol_control as control
from companion_app import controller as C
from companion_app.link_state import LinkState
from companion_app.store import Store


def make(tmp_path, **kw):
    store = Store(str(tmp_path / "app.db"))
    ctl = C.AppController(store, settings_path=str(tmp_path / "settings.json"), exports_dir=str(tmp_path), **kw)
    return ctl, C.SimulatedLink()


async def settle(n=5):
    for _ in range(n):
        await asyncio.sleep(0)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_events_stored_counted_and_alarm_for_recent_flagged(tmp_path):
    async def go():
        ctl, link = make(tmp_path)
        alarms = []
        ctl.alert_sinks.append(alarms.append)
        ctl.attach_link(link)
        await link.start()
        link.push_event(C.demo_event(1, P.CLEAR))
        link.push_event(C.demo_event(2, P.FEVER))
        link.push_event(C.demo_event(2, P.FEVER))  # a replay: stored once, no second alarm
        # A FEVER from an hour ago (journal replay): logged and uploaded, no alarm.
        link.push_event(C.demo_event(3, P.FEVER, now=time.time() - 3600))
        await settle(20)
        assert ctl.link_state.state == LinkState.CONNECTED
        assert [r.outcome_name for r in ctl.log_rows()] == ["FEVER", "CLEAR", "FEVER"]
        assert ctl.counts == {"events": 3, "fever": 2, "recheck": 0, "clear": 1}
        assert [a.name for a in alarms] == ["FEVER"] and ctl.alarm.reading.event.seq == 2
        assert ctl.reading.event.seq == 3
        assert ctl.outbox_counts()["pending"] == 2
        assert ctl.summary() == "uploaded=0 fever=2 recheck=0 clear=1"
        await link.stop()

    run(go())


def test_fault_events_are_announced_by_name(tmp_path, caplog):
    def fault(seq, code):
        return P.ScreeningEvent(seq=seq, time=int(time.time()), kind=P.EVENT_FAULT, outcome=code)

    async def go():
        ctl, link = make(tmp_path)
        said = []
        ctl.add_listener(lambda topic: said.append(ctl.message) if topic == "message" else None)
        ctl.attach_link(link)
        with caplog.at_level(logging.INFO, logger=C.log.name):
            link.push_event(fault(1, P.FAULT_DISTANCE_SENSOR))
            link.push_event(fault(1, P.FAULT_DISTANCE_SENSOR))  # a replay: said once
            link.push_event(fault(2, P.FAULT_SENSOR_BUS))
            link.push_event(fault(3, 9))  # a code from a newer helmet
            await settle(20)
        assert said == [
            "helmet fault: distance sensor failed, using head size (code 6, see log)",
            "helmet fault: thermal sensor not answering (code 1, see log)",
            "helmet fault: unknown to this app version (code 9, see log)",
        ]
        assert "distance sensor failed, using head size (code 6" in caplog.text  # the code stays in the log
        for code in range(1, len(P.FAULT_NAMES)):
            assert C.fault_name(code) == P.FAULT_NAMES[code]  # the protocol's names, one source
        assert C.fault_name(0) == C.fault_name(7) == "unknown to this app version"
        assert ctl.counts["events"] == 0 and ctl.alarm is None  # a fault is no reading

    run(go())


def test_recheck_does_not_replace_unacknowledged_fever(tmp_path):
    async def go():
        ctl, link = make(tmp_path)
        ctl.attach_link(link)
        link.push_event(C.demo_event(1, P.FEVER))
        link.push_event(C.demo_event(2, P.RECHECK))
        await settle(20)
        assert ctl.alarm.name == "FEVER"
        await ctl.acknowledge_alarm()
        link.push_event(C.demo_event(3, P.RECHECK))
        await settle(20)
        assert ctl.alarm.name == "RECHECK" and not ctl.alarm.acknowledged

    run(go())


def test_acknowledge_sends_silence_and_says_when_helmet_unreachable(tmp_path):
    async def go():
        ctl, link = make(tmp_path)
        silenced = []
        ctl.silence_sinks.append(lambda: silenced.append(1))
        ctl.attach_link(link)
        link.push_event(C.demo_event(1, P.FEVER))
        await settle(20)
        await ctl.acknowledge_alarm()
        assert link.commands[-1] == (control.OP_SILENCE, None)
        assert ctl.alarm.acknowledged and ctl.alarm.note == "helmet silenced" and silenced == [1]
        link.fail_commands = RuntimeError("link lost")
        link.push_event(C.demo_event(2, P.FEVER))
        await settle(20)
        await ctl.acknowledge_alarm()
        assert ctl.alarm.acknowledged and "helmet not reached (link lost)" in ctl.alarm.note

    run(go())


def test_settings_push_keeps_the_helmets_other_config(tmp_path):
    async def go():
        ctl, link = make(tmp_path)
        link.config = P.DeviceConfig(hysteresis_c=0.2, confirm_frames=5, coverage_k=3.0, frame_rate_hz=4, buzzer=False)
        ctl.attach_link(link)
        await link.start()
        await settle(20)
        msg = await ctl.save_settings(threshold_c=37.3, skin_to_core_offset_c=1.1)
        op, cfg = link.commands[-1]
        assert op == control.OP_SET_CONFIG
        assert (cfg.threshold_c, cfg.skin_to_core_offset_c) == (37.3, 1.1)
        assert (cfg.hysteresis_c, cfg.confirm_frames, cfg.coverage_k, cfg.frame_rate_hz, cfg.buzzer) == (
            0.2,
            5,
            3.0,
            4,
            False,
        )
        assert "helmet now uses threshold 37.30 °C, offset 1.10 °C" in msg
        # Out of the wire's range: refused, nothing sent, old value kept.
        n = len(link.commands)
        msg = await ctl.save_settings(threshold_c=41.0)
        assert msg.startswith("settings not saved") and len(link.commands) == n and ctl.settings.threshold_c == 37.3

    run(go())


def test_settings_file_private_and_token_not_logged(tmp_path, caplog):
    async def go():
        ctl, link = make(tmp_path)
        with caplog.at_level(logging.DEBUG):
            await ctl.save_settings(endpoint="https://fhir.example/fhir", token="s3cret-token", units="F")
        path = tmp_path / "settings.json"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert json.loads(path.read_text())["units"] == "F"
        assert "s3cret-token" not in caplog.text
        assert ctl.uploader is not None
        await ctl.stop()
        # A new controller reads them back.
        ctl2 = C.AppController(ctl.store, settings_path=str(path))
        assert ctl2.settings.units == "F" and ctl2.settings.endpoint == "https://fhir.example/fhir"

    run(go())


def test_live_view_requested_only_while_wanted(tmp_path):
    async def go():
        ctl, link = make(tmp_path)
        ctl.attach_link(link)
        await link.start()
        await settle(20)
        assert (control.OP_LIVE_START, None) not in link.commands
        await ctl.set_live_wanted(True)
        assert link.live and link.commands[-1] == (control.OP_LIVE_START, None)
        link.push_frame(C.demo_frame(0))
        await settle(20)
        assert ctl.frame is not None and ctl.frame.width == 32
        await ctl.set_live_wanted(False)
        assert not link.live and ctl.frame is None  # no frame kept once the view closes

    run(go())


def test_device_info_and_scan(tmp_path):
    async def scanner(seconds):
        return [C.FoundHelmet("AA:BB:CC:DD:EE:01", "helmet", -61)]

    async def go():
        ctl, link = make(tmp_path, scanner=scanner)
        found = await ctl.scan(0.1)
        assert found[0].rssi == -61 and ctl.message == "1 helmet(s) found"
        ctl.attach_link(link)
        await link.start()
        await settle(20)
        d = ctl.device
        assert (d.battery_pct, d.bonded, d.firmware) == (87, True, "helmet 0.1.0 (simulated)")

    run(go())


def test_export_csv_has_header_and_iso_times(tmp_path):
    async def go():
        ctl, link = make(tmp_path)
        ctl.attach_link(link)
        link.push_event(C.demo_event(1, P.FEVER, now=1_700_000_000))
        link.push_event(C.demo_event(2, P.CLEAR, now=1_700_000_010))
        await settle(20)
        path, n = ctl.export_csv(outcome=P.FEVER)
        lines = open(path).read().splitlines()
        assert n == 1 and lines[0].startswith("helmet_id,seq,event_time")
        assert "2023-11-14T22:13:20+00:00" in lines[1] and ",FEVER," in lines[1]

    run(go())


def test_heat_colours_and_hottest_spot():
    px = [2200] * (32 * 24)
    for y in range(10, 13):
        for x in range(20, 23):
            px[y * 32 + x] = 3800
    px[0] = P.PIXEL_NA
    rgb = C.frame_rgb(px, 32, 24, bottom_up=False)
    assert len(rgb) == 32 * 24 * 3
    assert rgb[(11 * 32 + 21) * 3 : (11 * 32 + 21) * 3 + 3] == C.heat_color(38.0)
    assert rgb[3:6] == C.heat_color(22.0)
    assert rgb[0:3] == bytes((90, 90, 90))
    # bottom-up: the top row comes last
    assert C.frame_rgb(px, 32, 24)[-32 * 3 : -31 * 3] == bytes((90, 90, 90))
    assert C.hottest_region(px, 32, 24) == (20, 10, 3, 38.0)
    # colours rise with temperature (brightness of the iron ramp)
    assert sum(C.heat_color(25.0)) < sum(C.heat_color(32.0)) < sum(C.heat_color(39.0))


@pytest.mark.parametrize(
    "c,units,text", [(37.0, "C", "37.0 °C"), (37.0, "F", "98.6 °F"), (None, "C", "--"), (38.0, "F", "100.4 °F")]
)
def test_temperature_units(c, units, text):
    assert C.fmt_temp(c, units) == text


def test_uncertainty_is_a_difference_in_fahrenheit():
    assert C.fmt_uncertainty(0.5, "F") == "± 0.9 °F"
    assert C.fmt_uncertainty(float("inf"), "C") == "± ≥5.1 °C"
    assert C.fmt_distance(float("inf")) == "> 12.7 m" and C.fmt_distance(None) == "distance unknown"


def test_flagged_readings_reach_the_ingest_server_once(tmp_path):
    from ingest_server.launch import IngestServer

    async def go(srv):
        ctl, link = make(tmp_path)
        run_task = asyncio.ensure_future(ctl.run())
        ctl.attach_link(link)
        await link.start()
        await ctl.save_settings(endpoint=srv.url, token="secret", allow_http_loopback=True)
        for seq, outcome in enumerate((P.CLEAR, P.RECHECK, P.FEVER, P.FEVER)):
            link.push_event(C.demo_event(seq, outcome))
        link.push_event(C.demo_event(3, P.FEVER))  # replayed: no second upload
        deadline = time.monotonic() + 15
        while ctl.outbox_counts()["sent"] < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert ctl.outbox_counts() == {"pending": 0, "sending": 0, "sent": 3, "failed": 0}
        assert [o.status for o in ctl.outbox_rows()] == ["created (HTTP 201)"] * 3
        assert ctl.summary() == "uploaded=3 fever=2 recheck=1 clear=1"
        await ctl.stop()
        await run_task

    with IngestServer(tmp_path / "obs.db", {"app": "secret"}) as srv:
        run(go(srv))
        assert len(srv.observations("secret")) == 3
