"""The translator: one OpenAI-compatible chat-completions call per text.

Ollama (``/v1/chat/completions``), llama.cpp's server and hosted APIs all speak this shape, so
one request form serves them all: a system message asking for the translation only, the text
as the user message, and the answer read from ``choices[0].message.content``. Anything else
(down, slow, an error status, an answer of another shape, an empty or runaway answer) raises
:class:`TranslationError`; deciding what that means for a job is the caller's business.

The endpoint is the user's own (usually on loopback, e.g. Ollama at 127.0.0.1:11434), so it is
trusted as configured, like a site's base URL; no redirect is followed, and ``http.proxy``
(the way out to the sites) is not used for it. The API key goes in a header and appears in no
message.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any
from urllib.parse import urlsplit

from pipeline.config import HttpConfig, TranslationConfig
from pipeline.errors import TranslationError, UpstreamError
from pipeline.http import HttpClient

__all__ = ["Translator", "TranslationError", "clean_reply", "parse_reply", "system_prompt"]

WHAT = {"title": "the title of a Japanese video", "plot": "the plot summary of a Japanese video"}
_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)  # reasoning models (qwen3, deepseek-r1) think aloud
_QUOTES = ('""', "''", "“”", "‘’", "「」", "『』", "《》", "«»")


def system_prompt(what: str, language: str) -> str:
    """The instruction sent before the text: translate, and answer with the translation only."""
    return (f"You are a translator. Translate {WHAT.get(what, what)} that the user sends into {language}. "
            "Keep product codes, names and numbers as they are. Reply with the translation only: "
            "no quotes, no notes, no romanisation, no explanation.")


class Translator:
    """Translates texts through the configured endpoint; one HTTP request per call."""

    def __init__(self, cfg: TranslationConfig, http: HttpConfig):
        if not cfg.enabled:
            raise ValueError("translation.url and translation.model are not set")
        self.cfg = cfg
        # The translator's own timeout, no retry (the next refresh is the retry), no proxy.
        self._http = dataclasses.replace(http, proxy=None, timeout_s=cfg.timeout_s, retries=0)
        parts = urlsplit(cfg.url)
        self.endpoint = f"{parts.scheme}://{parts.netloc}{parts.path}"  # for messages: no query

    def translate(self, text: str, what: str = "title") -> str:
        """``text`` in ``translation.target_language``.

        Raises:
            TranslationError: no usable answer; says why (never with the key).
        """
        body = json.dumps({
            "model": self.cfg.model,
            "messages": [{"role": "system", "content": system_prompt(what, self.cfg.target_language)},
                         {"role": "user", "content": text}],
            "temperature": 0,
            "stream": False,
        }, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.cfg.api_key:
            headers["Authorization"] = f"Bearer {self.cfg.api_key}"
        with HttpClient(self._http) as client:
            try:
                r = client.post(self.cfg.url, body, headers=headers, check=False)
            except UpstreamError as e:
                slow = "timed out" in e.detail.lower() or "timeout" in e.detail.lower()
                reason = (f"no answer within {self.cfg.timeout_s:g} s (translation.timeout_s)" if slow
                          else f"unreachable ({self._scrub(e.detail)})")
                raise TranslationError(self.endpoint, reason) from None
        if r.status != 200:
            raise TranslationError(self.endpoint, f"HTTP {r.status}{_error_detail(r.content, self._scrub)}"
                                   + (" (redirects are not followed: set translation.url to the endpoint itself)"
                                      if 300 <= r.status < 400 else ""))
        return clean_reply(parse_reply(r.content, self.endpoint), text, self.endpoint, what)

    def _scrub(self, message: str) -> str:
        """``message`` without the configured URL's query or the key, should curl echo them."""
        out = message.replace(self.cfg.url, self.endpoint)
        if self.cfg.api_key:
            out = out.replace(self.cfg.api_key, "***")
        return out


def parse_reply(body: bytes, endpoint: str = "the translator") -> str:
    """``choices[0].message.content`` of a chat-completions answer.

    Raises:
        TranslationError: not JSON, or not that shape.
    """
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise TranslationError(endpoint, f"answer is not JSON ({_snippet(body)})") from None
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise TranslationError(endpoint, "answer is not a chat completion "
                                         "(no choices[0].message.content)") from None
    if not isinstance(content, str):
        raise TranslationError(endpoint, "choices[0].message.content is not text")
    return content


def clean_reply(content: str, source: str, endpoint: str = "the translator", what: str = "title") -> str:
    """The translation in ``content``: reasoning blocks, surrounding whitespace and quotes
    removed; a title on one line.

    Raises:
        TranslationError: nothing left, or far longer than any translation of ``source``.
    """
    out = _THINK.sub("", content).strip()
    changed = True
    while changed and len(out) >= 2:
        changed = False
        for pair in _QUOTES:
            if out[0] == pair[0] and out[-1] == pair[1]:
                out, changed = out[1:-1].strip(), True
                break
    if what == "title":
        out = " ".join(out.split())
    if not out:
        raise TranslationError(endpoint, "answer is empty")
    if len(out) > max(400, 8 * len(source)):
        raise TranslationError(endpoint, f"answer is {len(out)} characters for a {len(source)}-character "
                                         f"{what}: not a translation")
    return out


def _error_detail(body: bytes, scrub) -> str:
    """``: message`` of an OpenAI-style error body (``{"error": {"message": …}}``), if any."""
    try:
        err = json.loads(body).get("error")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return ""
    msg = err.get("message") if isinstance(err, dict) else err if isinstance(err, str) else None
    return f": {scrub(str(msg))[:200]}" if msg else ""


def _snippet(body: bytes) -> str:
    text = body[:80].decode("utf-8", errors="replace").replace("\n", " ")
    return repr(text + ("…" if len(body) > 80 else ""))
