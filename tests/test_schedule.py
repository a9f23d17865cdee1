"""Download hours and rate caps by the hour, the free-space reading and the disk alarm; the
clock is a parameter (``now``), the disk is the real one (its threshold is set around it)."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pytest

from pipeline.config import load
from pipeline.diskspace import DISK_LOW, DISK_OK, DiskAlarm, DiskSpace, gb
from pipeline.download_gate import DownloadGate
from pipeline.errors import ConfigError
from pipeline.events import Events
from pipeline.schedule import Schedule, format_rate, parse_rate, parse_window


def at(hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 3, 14, h, m, 30)


def test_a_window_holds_its_start_not_its_end_and_may_cross_midnight():
    w = parse_window("01:00-07:00")
    assert [w.contains(at(t)) for t in ("00:59", "01:00", "06:59", "07:00")] == [False, True, True, False]
    night = parse_window("22:00-06:00")
    assert [night.contains(at(t)) for t in ("21:59", "22:00", "23:59", "00:00", "05:59", "06:00")] == [
        False, True, True, True, True, False]
    whole = parse_window("00:00-24:00")
    assert all(whole.contains(at(t)) for t in ("00:00", "12:00", "23:59"))
    assert str(parse_window(" 7:05 - 9:00 ")) == "07:05-09:00"


def test_next_opening_is_today_or_tomorrow():
    w = parse_window("01:00-07:00")
    assert w.next_start(at("08:00")) == datetime(2026, 3, 15, 1, 0)
    assert w.next_start(at("00:30")) == datetime(2026, 3, 14, 1, 0)
    assert w.next_end(at("02:00")) == datetime(2026, 3, 14, 7, 0)
    assert parse_window("22:00-06:00").next_end(at("23:00")) == datetime(2026, 3, 15, 6, 0)


@pytest.mark.parametrize("text", ["", "1-7", "01:00", "25:00-01:00", "01:60-02:00", "24:00-01:00",
                                  "07:00-07:00", "00:00-00:00", "01:00-24:01"])
def test_bad_windows_are_refused_with_the_reason(text):
    with pytest.raises(ValueError):
        parse_window(text)


def test_rates_read_as_bytes_per_second():
    assert parse_rate("2MiB/s") == 2 << 20
    assert parse_rate("500KiB/s") == 500 << 10
    assert parse_rate("1.5M") == int(1.5 * (1 << 20))
    assert parse_rate("1G/s") == 1 << 30
    assert parse_rate("4096") == 4096 and parse_rate(4096) == 4096
    for bad in ("fast", "2 MiB per second", "0", "-1M", "", True):
        with pytest.raises(ValueError):
            parse_rate(bad)
    assert format_rate(2 << 20) == "2MiB/s" and format_rate(512) == "512B/s"


def test_schedule_says_when_downloads_run_and_how_fast():
    s = Schedule.parse("01:00-07:00", [("08:00-23:00", "2MiB/s"), ("20:00-22:00", "1MiB/s")])
    assert s.may_download(at("03:00")) and not s.may_download(at("12:00"))
    assert s.opens_at(at("03:00")) is None and s.opens_at(at("12:00")) == datetime(2026, 3, 15, 1, 0)
    assert s.speed_limit(at("03:00")) == 0  # no cap at night
    assert s.speed_limit(at("12:00")) == 2 << 20
    assert s.speed_limit(at("21:00")) == 1 << 20  # the lowest cap in force wins
    assert s.speed_limit(at("12:00"), base=1 << 20) == 1 << 20  # and so does a lower global one
    assert s.speed_limit(at("03:00"), base=3) == 3
    always = Schedule.parse("")
    assert always.may_download(at("12:00")) and always.speed_limit(at("12:00")) == 0


def test_config_reads_and_validates_disk_and_schedule(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text('download:\n  min_free_gb: 2.5\n  hours: "01:00-07:00"\n'
                 '  bandwidth:\n    - {hours: "08:00-23:00", limit: 2MiB/s}\n    - {hours: "23:00-01:00", limit: 65536}\n')
    d = load(p, {}).download
    assert d.min_free_gb == 2.5 and d.hours == "01:00-07:00"
    gate = DownloadGate.from_config(d, tmp_path, now=lambda: at("12:00"))
    assert gate.disk.min_free_bytes == 2_500_000_000
    local = at("12:00").astimezone().tzname()  # no download.timezone: the server's own zone, named
    assert gate.speed_limit() == 2 << 20 and gate.check().message == f"quiet hours until 01:00 ({local})"
    assert load(None, {}).download.min_free_gb == 5.0 and load(None, {}).download.hours == ""


@pytest.mark.parametrize("yaml_text, key, named", [
    ('download: {hours: "1am-7am"}', "download.hours", "HH:MM-HH:MM"),
    ('download: {hours: "07:00-07:00"}', "download.hours", "start and end must differ"),
    ('download: {bandwidth: [{hours: "08:00-23:00", limit: fast}]}', "download.bandwidth[0].limit", "2MiB/s"),
    ('download: {bandwidth: [{hours: "8-23", limit: 2M}]}', "download.bandwidth[0].hours", "HH:MM-HH:MM"),
    ('download: {bandwidth: {hours: "08:00-23:00", limit: 2M}}', "download.bandwidth", "a list of mappings"),
    ('download: {bandwidth: [{hours: "08:00-23:00", rate: 2M}]}', "download.bandwidth.rate", "hours, limit"),
    ('download: {min_free_gb: -1}', "download.min_free_gb", "gigabytes from 0"),
    ('download: {pause_resend_s: 0}', "download.pause_resend_s", "seconds from 1"),
])
def test_config_errors_name_the_key_and_the_accepted_form(tmp_path, yaml_text, key, named):
    p = tmp_path / "c.yaml"
    p.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError) as e:
        load(p, {})
    assert e.value.key == key and named in str(e.value)


def test_disk_space_reads_the_real_disk_against_its_threshold(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    disk = DiskSpace(tmp_path / "not" / "made" / "yet", min_free_bytes=free * 4)
    reading = disk.read()  # the nearest existing parent answers for a dir not made yet
    assert reading.low and abs(reading.free_bytes - free) < free * 0.5 + 10 ** 8
    assert reading.message == f"disk has {gb(reading.free_bytes)} free, needs {gb(free * 4)}"
    assert reading.data() == {"free_bytes": reading.free_bytes, "min_free_bytes": free * 4,
                              "path": str(tmp_path / "not" / "made" / "yet")}
    disk.min_free_bytes = 0
    assert not disk.read().low
    assert gb(3.1e9) == "3.1 GB" and gb(5e9) == "5 GB" and gb(850e6) == "850 MB" and gb(0) == "0 MB"


def test_the_gate_names_every_reason_hours_first(tmp_path):
    clock = [at("12:00")]
    gate = DownloadGate(DiskSpace(tmp_path, 10 ** 18), Schedule.parse("01:00-07:00"), now=lambda: clock[0])
    assert [p.kind for p in gate.pauses()] == ["hours", "disk"]
    local = at("12:00").astimezone().tzname()
    assert gate.check().data() == {"reason": "hours", "message": f"quiet hours until 01:00 ({local})",
                                   "until": "01:00", "timezone": local}
    clock[0] = at("02:00")
    pause = gate.check()
    assert pause.kind == "disk" and pause.data()["min_free_bytes"] == 10 ** 18
    gate.disk.min_free_bytes = 0
    assert gate.check() is None and gate.pauses() == []


def test_disk_alarm_emits_low_and_ok_once_per_change(tmp_path, r):
    events = Events(r)
    disk = DiskSpace(tmp_path, 0)
    alarm, other_worker = DiskAlarm(r, events), DiskAlarm(r, events)
    assert alarm.observe(disk.read()) is None  # fine from the start: nothing to say
    disk.min_free_bytes = 10 ** 18
    assert alarm.observe(disk.read(), avid="ABC-123", job_id="j1") == DISK_LOW
    assert other_worker.observe(disk.read()) is None  # another worker sees the same low disk
    disk.min_free_bytes = 0
    assert other_worker.observe(disk.read()) == DISK_OK
    assert alarm.observe(disk.read()) is None
    got = [(e.type, e.avid, e.data["min_free_bytes"]) for e in events.after("0")]
    assert got == [(DISK_LOW, "ABC-123", 10 ** 18), (DISK_OK, "", 0)]
    low = events.after("0")[0]
    assert set(low.data) == {"free_bytes", "min_free_bytes", "path"} and low.data["path"] == str(tmp_path)


def test_a_reading_after_a_stop_is_held_to_the_threshold_plus_what_the_stop_freed(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    disk = DiskSpace(tmp_path, free // 2)
    assert not disk.read().low
    held = disk.read(extra_bytes=free)  # more than the disk has: still waiting
    assert held.low and held.needed == free // 2 + free and held.min_free_bytes == free // 2
    assert held.message.endswith(f"needs {gb(free // 2 + free)}")
    assert held.data()["needed_bytes"] == free // 2 + free and "needed_bytes" not in disk.read().data()
    disk.min_free_bytes = 0  # no guard: nothing to hold to
    assert not disk.read(extra_bytes=free * 10).low


# -- download.timezone: the windows read on a named zone's clock, not the server's -------------

def utc(y: int, mo: int, d: int, h: int, mi: int) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=timezone.utc)


def test_a_named_zone_reads_the_windows_on_its_own_clock_across_the_day_boundary():
    # 17:30 UTC on 14 March is 01:30 on 15 March in Shanghai (UTC+8): inside "01:00-07:00"
    # there, outside it on a UTC server. The injected instant is the same for both.
    shanghai = Schedule.parse("01:00-07:00", [("08:00-23:00", "2MiB/s")], timezone="Asia/Shanghai")
    server = Schedule.parse("01:00-07:00", [("08:00-23:00", "2MiB/s")], timezone="UTC")
    instant = utc(2026, 3, 14, 17, 30)
    assert shanghai.may_download(instant) and not server.may_download(instant)
    assert shanghai.speed_limit(instant) == 0 and server.speed_limit(instant) == 2 << 20
    # 16:30 UTC is 00:30 in Shanghai: the window opens at 01:00 Shanghai = 17:00 UTC, same day.
    opens = shanghai.opens_at(utc(2026, 3, 14, 16, 30))
    assert opens is not None and opens.strftime("%Y-%m-%d %H:%M") == "2026-03-15 01:00"
    assert opens.astimezone(timezone.utc) == utc(2026, 3, 14, 17, 0)
    assert shanghai.zone_name(instant) == "Asia/Shanghai"


def test_a_zone_with_daylight_saving_moves_the_window_in_utc():
    # "01:00-07:00" in Berlin is 00:00-06:00 UTC in winter (UTC+1), 23:00-05:00 UTC in summer.
    berlin = Schedule.parse("01:00-07:00", timezone="Europe/Berlin")
    assert berlin.may_download(utc(2026, 1, 10, 0, 30)) and not berlin.may_download(utc(2026, 1, 10, 23, 30))
    assert berlin.may_download(utc(2026, 7, 10, 23, 30)) and not berlin.may_download(utc(2026, 7, 10, 5, 30))


def test_the_gate_takes_now_in_the_zone_and_names_it(tmp_path):
    clock = [utc(2026, 3, 14, 12, 0)]  # 20:00 in Shanghai
    gate = DownloadGate(DiskSpace(tmp_path, 0), Schedule.parse("01:00-07:00", timezone="Asia/Shanghai"),
                        now=lambda: clock[0])
    assert gate.check().data() == {"reason": "hours", "message": "quiet hours until 01:00 (Asia/Shanghai)",
                                   "until": "01:00", "timezone": "Asia/Shanghai"}
    clock[0] = utc(2026, 3, 14, 18, 0)  # 02:00 in Shanghai, the 15th
    assert gate.check() is None
    assert gate.state()["timezone"] == "Asia/Shanghai"


def test_an_empty_zone_is_the_servers_local_time_and_says_which():
    local = Schedule.parse("01:00-07:00")
    naive = at("12:00")  # a naive time is the server's local wall clock, as before
    assert not local.may_download(naive) and local.opens_at(naive) == datetime(2026, 3, 15, 1, 0)
    assert local.zone_name(naive) == naive.astimezone().tzname()


def test_config_reads_the_zone_and_refuses_an_unknown_one(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text('download:\n  hours: "01:00-07:00"\n  timezone: Asia/Shanghai\n')
    d = load(p, {}).download
    assert d.timezone == "Asia/Shanghai" and load(None, {}).download.timezone == ""
    gate = DownloadGate.from_config(d, tmp_path, now=lambda: utc(2026, 3, 14, 17, 30))
    assert gate.check() is None or gate.check().kind == "disk"  # 01:30 in Shanghai: the window is open
    for bad in ("Mars/Olympus", "UTC+8", "../etc/passwd", "Asia/"):
        p.write_text(f'download: {{timezone: "{bad}"}}\n')
        with pytest.raises(ConfigError) as e:
            load(p, {})
        assert e.value.key == "download.timezone" and "IANA time zone name" in str(e.value)
        assert "Asia/Shanghai" in str(e.value)


def test_a_zone_loads_without_the_systems_zone_files(tmp_path):
    # Slim images have no /usr/share/zoneinfo: zoneinfo then reads the tzdata package, a
    # dependency in pyproject.toml. A process that sees no system zone files must still load it.
    import os
    import subprocess
    import sys

    p = tmp_path / "c.yaml"
    p.write_text("download: {timezone: Asia/Shanghai}\n")
    code = "import sys; from pipeline.config import load; print(load(sys.argv[1], {}).download.timezone)"
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONTZPATH": str(tmp_path / "no-zoneinfo")})
    assert out.returncode == 0 and out.stdout.strip() == "Asia/Shanghai", out.stderr
