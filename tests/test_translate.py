"""The translator against a local OpenAI-compatible server (real HTTP on 127.0.0.1): what it
sends, what it reads, and that down, slow, failing and garbage servers all end in a
TranslationError that says why and never shows the key."""

import json
import time

import pytest

from pipeline.config import HttpConfig, load
from pipeline.errors import TranslationError
from pipeline.translate import Translator, clean_reply, parse_reply
from tests.conftest import free_port
from tests.fake_openai import fake_openai

KEY = "sk-test-0123456789abcdef"


def translator(url: str, **translation) -> Translator:
    # The default HTTP settings: private URLs are NOT allowed for fetched pages, yet the
    # configured translator on loopback is reached.
    cfg = load(None, {}, translation={"url": url, "model": "qwen2.5:7b", **translation})
    assert cfg.http.allow_private_urls is False
    return Translator(cfg.translation, cfg.http)


def test_translates_through_a_chat_completions_endpoint_on_loopback():
    with fake_openai(api_key=KEY) as srv:
        out = translator(srv.url, api_key=KEY, target_language="English").translate("虛構的測試影片", "title")
    assert out == "译 虛構的測試影片"  # quotes and whitespace around the answer are gone
    [req] = srv.requests
    assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    body = req["body"]
    assert body["model"] == "qwen2.5:7b" and body["stream"] is False
    system, user = body["messages"]
    assert system["role"] == "system" and "English" in system["content"]
    assert "translation only" in system["content"]
    assert user == {"role": "user", "content": "虛構的測試影片"}


def test_no_key_no_authorization_header():
    with fake_openai() as srv:
        translator(srv.url).translate("テスト")
    assert "Authorization" not in srv.requests[0]["headers"]


def test_a_wrong_key_is_a_401_that_does_not_show_the_key():
    with fake_openai(api_key="the-right-one") as srv, pytest.raises(TranslationError) as e:
        translator(srv.url, api_key=KEY).translate("テスト")
    assert "HTTP 401" in str(e.value) and "Incorrect API key" in str(e.value)
    assert KEY not in str(e.value)


def test_a_slow_translator_times_out():
    with fake_openai(mode="slow", delay_s=30) as srv:
        t = translator(srv.url, timeout_s=1)
        t0 = time.monotonic()
        with pytest.raises(TranslationError) as e:
            t.translate("テスト")
        waited = time.monotonic() - t0
    assert "no answer within 1 s" in str(e.value) and "translation.timeout_s" in str(e.value)
    assert waited < 15  # it gave up on its own timeout, not the server's 30 s


def test_a_translator_that_is_down():
    port = free_port()  # nothing listens there
    with pytest.raises(TranslationError) as e:
        translator(f"http://127.0.0.1:{port}/v1/chat/completions?key={KEY}").translate("テスト")
    assert "unreachable" in str(e.value) and f"127.0.0.1:{port}" in str(e.value)
    assert KEY not in str(e.value)  # the URL's query is never shown


@pytest.mark.parametrize("mode, said", [("error", "HTTP 500: model runner has unexpectedly stopped"),
                                        ("garbage", "not JSON")])
def test_an_error_status_or_garbage(mode, said):
    with fake_openai(mode=mode) as srv, pytest.raises(TranslationError) as e:
        translator(srv.url).translate("テスト")
    assert said in str(e.value)


def test_an_empty_or_runaway_answer_is_not_a_translation():
    with fake_openai(answer=lambda text: "  \n") as srv, pytest.raises(TranslationError, match="empty"):
        translator(srv.url).translate("テスト")
    with fake_openai(answer=lambda text: "blah " * 200) as srv, pytest.raises(TranslationError, match="not a translation"):
        translator(srv.url).translate("テスト")


def test_a_redirect_is_not_followed():
    with fake_openai(mode="redirect") as srv, pytest.raises(TranslationError) as e:
        translator(srv.url).translate("テスト")
    assert "HTTP 307" in str(e.value) and "redirects are not followed" in str(e.value)
    assert len(srv.requests) == 1


def test_a_wrong_path_is_the_servers_404():
    with fake_openai() as srv, pytest.raises(TranslationError, match="HTTP 404: no route /v1/other"):
        translator(srv.url.replace("/v1/chat/completions", "/v1/other")).translate("テスト")


@pytest.mark.parametrize("body, said", [
    (b'{"choices": []}', "no choices[0].message.content"),
    (b'{"object": "list", "data": []}', "no choices[0].message.content"),
    (b'{"choices": [{"message": {"content": null}}]}', "not text"),
    (b'[1, 2]', "no choices[0].message.content"),
    (b"\xff\xfe", "not JSON"),
])
def test_parse_reply_refuses_other_shapes(body, said):
    with pytest.raises(TranslationError, match=said.replace("[", r"\[").replace("]", r"\]")):
        parse_reply(body)


def test_parse_reply_reads_the_api_shape():
    body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "好"}}]}).encode()
    assert parse_reply(body) == "好"


@pytest.mark.parametrize("content, out", [
    ("「虚构的测试影片」", "虚构的测试影片"),
    ('"“Quoted twice”"', "Quoted twice"),
    ("<think>The user wants…\nOK.</think>\n\n虚构的\n测试影片 ", "虚构的 测试影片"),
    ("It's fine", "It's fine"),
])
def test_clean_reply(content, out):
    assert clean_reply(content, "虛構的測試影片") == out


def test_a_plot_keeps_its_lines():
    assert clean_reply("第一行\n第二行", "x" * 50, what="plot") == "第一行\n第二行"


def test_the_key_is_not_in_the_config_repr():
    cfg = load(None, {"NASSAV_TRANSLATION_API_KEY": KEY},
               translation={"url": "http://127.0.0.1:11434/v1/chat/completions", "model": "m"})
    assert cfg.translation.api_key == KEY
    assert KEY not in repr(cfg)


def test_translator_needs_url_and_model():
    with pytest.raises(ValueError):
        Translator(load(None, {}).translation, HttpConfig())


def test_post_keeps_the_url_rules_for_unconfigured_urls():
    """``check=False`` is for the configured endpoint only: a checked POST still refuses loopback."""
    from pipeline.errors import UnsafeURL
    from pipeline.http import HttpClient

    with fake_openai() as srv, HttpClient(HttpConfig()) as client:
        with pytest.raises(UnsafeURL, match="non-public address"):
            client.post(srv.url, b"{}", check=True)
        assert client.post(srv.url, b"{}", check=False).status == 400  # reached: the server's own answer
    assert len(srv.requests) == 1
