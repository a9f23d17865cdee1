from pathlib import Path

import pytest

from pipeline.config import load
from pipeline.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_without_file():
    cfg = load(None, {})
    assert cfg.redis_url is None and cfg.port == 8000
    assert cfg.sources_by_weight()[0][0] == "missav"


def test_template_loads():
    root = Path(__file__).resolve().parent.parent
    cfg = load(root / "deploy" / "config.template.yaml", {})
    assert cfg.download.mutex_limit == 1


@pytest.mark.parametrize("text, key", [
    ("prot: 8000\n", "prot"),
    ("port: eighty\n", "port"),
    ("port: 0\n", "port"),
    ("download:\n  concurrency: many\n", "download.concurrency"),
    ("download:\n  bogus: 1\n", "download.bogus"),
    ("sources:\n  jable:\n    weight: -1\n", "sources.jable.weight"),
    ("sources:\n  jable:\n    base_url: ftp://x\n", "sources.jable.base_url"),
    ("http:\n  impersonate: netscape4\n", "http.impersonate"),
    ("redis_url: localhost:6379\n", "redis_url"),
    ("workers: 3\n", "workers"),
    ("download:\n  backend: n_m3u8dl_re\n", "download.backend"),
    ("library:\n  write_nfo: yes please\n", "library.write_nfo"),
])
def test_wrong_key_or_type_names_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path, text), {})
    assert str(e.value).startswith(f"config: {key}:")
    assert "\n" not in str(e.value)


def test_a_config_from_the_earlier_template_still_loads(tmp_path):
    """``download.backend`` left the config; ``builtin``, the one value it ever took, is ignored."""
    cfg = load(write(tmp_path, "download:\n  backend: builtin\n  concurrency: 4\n"), {})
    assert cfg.download.concurrency == 4 and not hasattr(cfg.download, "backend")


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError):
        load(write(tmp_path, "port: [1,\n"), {})
    with pytest.raises(ConfigError):
        load(tmp_path / "nope.yaml", {})


def test_env_overrides_file_and_cli_overrides_env(tmp_path):
    p = write(tmp_path, "port: 9000\ndata_dir: /srv/a\n")
    cfg = load(p, {"NASSAV_PORT": "9100", "NASSAV_REDIS_URL": "redis://h:1/0", "REDIS_URL": "redis://other/0"})
    assert cfg.port == 9100 and cfg.redis_url == "redis://h:1/0" and cfg.data_dir == "/srv/a"
    cfg = load(p, {"NASSAV_PORT": "9100"}, port=9200)
    assert cfg.port == 9200
    with pytest.raises(ConfigError):
        load(p, {"NASSAV_PORT": "x"})


def test_source_tables_merge_over_defaults(tmp_path):
    cfg = load(write(tmp_path, "sources:\n  jable:\n    weight: 0\n"), {})
    names = [n for n, _ in cfg.sources_by_weight()]
    assert "jable" not in names and "missav" in names
