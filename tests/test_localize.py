"""The translation settings, the Chinese conversion (real OpenCC) and the localize step over
one metadata record (with a local OpenAI-compatible server where a translator is needed)."""

from pathlib import Path

import pytest

from pipeline import chinese, nfo, overrides
from pipeline.config import load
from pipeline.errors import ConfigError
from pipeline.localize import localize, translation_source
from pipeline.translate import Translator
from tests.fake_openai import fake_openai

KEY = "sk-secret-abcdef0123"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return p


# -- config ---------------------------------------------------------------------------------

def test_off_by_default():
    t = load(None, {}).translation
    assert not t.enabled and t.chinese_conversion == "none" and t.nfo_title == "translated"
    assert t.target_language == "Simplified Chinese" and t.fields == ("title", "plot")


def test_a_full_section_loads(tmp_path):
    t = load(write(tmp_path, "translation:\n  url: http://127.0.0.1:11434/v1/chat/completions\n"
                             "  model: qwen2.5:7b\n  fields: title\n  nfo_title: original\n"
                             "  chinese_conversion: t2s\n  timeout_s: 12\n"), {}).translation
    assert t.enabled and t.fields == ("title",) and t.timeout_s == 12.0 and t.chinese_conversion == "t2s"


@pytest.mark.parametrize("text, key, says", [
    ("translation:\n  url: ftp://x/v1\n  model: m\n", "translation.url", "chat-completions URL"),
    ("translation:\n  url: http://127.0.0.1:11434/v1/chat/completions\n", "translation.model", "both"),
    ("translation:\n  model: m\n", "translation.url", "both"),
    ("translation:\n  timeout_s: 0\n", "translation.timeout_s", "more than 0"),
    ("translation:\n  timeout_s: 600\n", "translation.timeout_s", "at most 120"),
    ("translation:\n  fields: [title, summary]\n", "translation.fields", "title and plot"),
    ("translation:\n  nfo_title: both\n", "translation.nfo_title", "translated, original"),
    ("translation:\n  chinese_conversion: s2t\n", "translation.chinese_conversion", "none, t2s"),
    ("translation:\n  target_language: ''\n", "translation.target_language", "language name"),
    ("translation:\n  colour: red\n", "translation.colour", "unknown key"),
])
def test_wrong_values_name_the_key_and_the_accepted_form(tmp_path, text, key, says):
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path, text), {})
    assert str(e.value).startswith(f"config: {key}:") and says in str(e.value)


def test_a_bad_key_is_refused_without_showing_it(tmp_path):
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path, f'translation:\n  api_key: "{KEY}\\nX-Injected: 1"\n'), {})
    assert str(e.value).startswith("config: translation.api_key:") and KEY not in str(e.value)


def test_the_key_may_come_from_the_environment(tmp_path):
    path = write(tmp_path, "translation:\n  url: https://api.example.com/v1/chat/completions\n  model: m\n")
    t = load(path, {"NASSAV_TRANSLATION_API_KEY": KEY}).translation
    assert t.api_key == KEY and t.url.startswith("https://api.example.com")


def test_settings_api_changes_the_safe_keys_only():
    base = load(None, {})
    new = overrides.apply(base, {"translation": {"nfo_title": "original", "chinese_conversion": "t2s"}})
    assert new.translation.nfo_title == "original" and new.translation.chinese_conversion == "t2s"
    assert overrides.view(new)["translation"]["chinese_conversion"] == "t2s"
    assert "api_key" not in overrides.view(new)["translation"]
    for key in ("url", "model", "api_key"):
        with pytest.raises(overrides.SettingsError, match=f"translation.{key}: not changeable here"):
            overrides.apply(base, {"translation": {key: "http://10.0.0.1/"}})
    with pytest.raises(overrides.SettingsError, match="translation.nfo_title"):
        overrides.apply(base, {"translation": {"nfo_title": "both"}})


# -- Chinese conversion -----------------------------------------------------------------------

def test_t2s_converts_the_catalogue_words_and_keeps_the_original_title():
    meta = {"title": "虛構的測試影片", "original_title": "虛構的測試影片", "genres": ["戀愛", "劇情", "FHD"],
            "label": "虛構唱片", "series": "示範系列 3", "studio": "測試製作所", "director": "範例導演",
            "actors": [{"name": "Aoi Mockford"}]}
    got = chinese.converted_fields(meta, "t2s")
    assert got == {"title": "虚构的测试影片", "genres": ["恋爱", "剧情", "FHD"], "label": "虚构唱片",
                   "series": "示范系列 3", "studio": "测试制作所"}


def test_no_conversion_and_nothing_to_convert():
    assert chinese.converted_fields({"title": "虛構"}, "none") == {}
    assert chinese.converted_fields({"title": "已经是简体", "genres": []}, "t2s") == {}


# -- localize -------------------------------------------------------------------------------

def test_translation_source_prefers_the_catalogues_own_text():
    assert translation_source({"original_title": "原", "title": "原 converted", "source_title": "s"}, "title") == "原"
    assert translation_source({"title": " t ", "source_title": "s"}, "title") == "t"
    assert translation_source({"source_title": "s"}, "title") == "s"
    assert translation_source({"title": "t"}, "plot") == ""


def test_plot_is_translated_when_the_metadata_has_one_and_goes_to_the_nfo():
    with fake_openai() as srv:
        cfg = load(None, {}, translation={"url": srv.url, "model": "m"}).translation
        meta = {"avid": "ABC-123", "title": "タイトル", "original_title": "タイトル", "plot": "あらすじ\n二行目"}
        got = localize(meta, cfg, Translator(cfg, load(None, {}).http), now=5.0)
    assert got.fields["translated_title"] == "译 タイトル"
    assert got.fields["translated_plot"] == "译 あらすじ\n二行目"
    assert got.fields["translation"]["plot"] == {"from": "あらすじ\n二行目", "model": "m",
                                                 "target_language": "Simplified Chinese", "at": 5.0}
    assert "plot summary" in srv.requests[1]["body"]["messages"][0]["content"]
    doc = nfo.render({**meta, **got.fields}).decode()
    assert "<title>ABC-123 译 タイトル</title>" in doc and "<originaltitle>タイトル</originaltitle>" in doc
    assert "<plot>译 あらすじ\n二行目</plot>" in doc
    original = nfo.render({**meta, **got.fields}, "original").decode()
    assert "<title>ABC-123 タイトル</title>" in original and "<plot>あらすじ\n二行目</plot>" in original


def test_a_new_model_or_language_translates_again_and_a_failure_drops_a_stale_answer():
    with fake_openai() as srv:
        cfg = load(None, {}, translation={"url": srv.url, "model": "m", "fields": ["title"]}).translation
        http = load(None, {}).http
        meta = {"original_title": "旧", "translated_title": "译 旧",
                "translation": {"title": {"from": "旧", "model": "m", "target_language": "Simplified Chinese"}}}
        assert localize(meta, cfg, Translator(cfg, http)).report["translation_reused"] == ["title"]
        assert not srv.requests
        other = load(None, {}, translation={"url": srv.url, "model": "m", "target_language": "English"}).translation
        assert localize(meta, other, Translator(other, http)).fields["translated_title"] == "译 旧"
        assert len(srv.requests) == 1
        srv.mode = "error"
        changed = {**meta, "original_title": "新"}  # the catalogue's title changed; the answer is for the old
        got = localize(changed, cfg, Translator(cfg, http))
        assert got.fields == {"translated_title": ""} and len(got.warnings) == 1
        kept = localize(meta, cfg, Translator(cfg, http), force=True)  # same text: the old answer stays
        assert kept.fields == {} and len(kept.warnings) == 1
