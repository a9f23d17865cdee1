import json
import logging

from pipeline import logs


def _read(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_context_fields_on_every_line_and_no_secrets(tmp_path):
    logs.setup("unit", data_dir=tmp_path, json_lines=True)
    log = logging.getLogger("nassav.test")
    with logs.context(avid="ABC-123", job="1234abcd", stage="download"):
        log.info("fetched with cookie=cf_clearance_SECRETVALUE123 and token: t0k3nSECRET")
        log.info('headers {"Authorization": "Bearer SECRETBEARER"}')
    log.info("outside")
    lines = [json.loads(x) for x in _read(tmp_path / "logs" / "unit.log")]
    assert lines[0]["avid"] == "ABC-123" and lines[0]["job"] == "1234abcd" and lines[0]["stage"] == "download"
    assert "avid" not in lines[2]
    text = "\n".join(x["msg"] for x in lines)
    assert "SECRETVALUE" not in text and "t0k3nSECRET" not in text and "SECRETBEARER" not in text
    assert "cookie=cf_c…" in text


def test_plain_format_and_rotation(tmp_path):
    logs.setup("rot", data_dir=tmp_path, max_bytes=2000, backups=2)
    log = logging.getLogger("nassav.test")
    with logs.context(avid="XYZ-001"):
        for i in range(200):
            log.warning("line %d %s", i, "x" * 40)
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["rot.log", "rot.log.1", "rot.log.2"]
    last = _read(tmp_path / "logs" / "rot.log")[-1]
    assert "WARNING" in last and "[avid=XYZ-001]" in last and "line 199" in last
    logging.getLogger().handlers.clear()
