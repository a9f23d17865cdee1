"""The web page's Simplified Chinese dictionary covers every word the page can show.

Reads the files as they are served: every ``t("key", "English")`` in the static scripts and every
``data-i18n*`` attribute in index.html must have a zh-CN entry (a view added to app.js fails here,
naming its keys, until the dictionary in i18n.js has them); no entry may be the English left as it
was, except the few words that are the same in Chinese; the {placeholders} must match.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from gateway.web import STATIC_DIR

# Words a Chinese page writes exactly as the English one does.
SAME_IN_CHINESE = {"nassav", "AVID", "NFO", "API", "HTTP", "Redis", "ETA"}
I18N_ATTRS = ("data-i18n", "data-i18n-placeholder", "data-i18n-title", "data-i18n-aria-label")
# A string literal in "…", '…' or `…` (a template without ${…}): group "q" is the quote.
_STRING = r"""(?P<q{n}>["'`])(?P<s{n}>(?:(?!(?P=q{n}))[^\\\n$]|\\.|\$(?!\{{))*)(?P=q{n})"""
T_CALL = re.compile(r"(?<![\w.$])t\(\s*" + _STRING.format(n=1) + r"\s*,\s*" + _STRING.format(n=2))
ANY_T_CALL = re.compile(r"(?<![\w.$])t\(\s*(?!\))")


def scripts() -> dict[str, str]:
    """The page's scripts but i18n.js (the mechanism itself), comment lines blanked."""
    return {p.name: re.sub(r"(?m)(^|\s)//.*$", r"\1", p.read_text(encoding="utf-8"))
            for p in sorted(STATIC_DIR.glob("*.js")) if p.name != "i18n.js"}


def unescape(js: str) -> str:
    """The text of a JavaScript string literal's body: \\n and \\t, else the escaped character itself."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), js)


def script_uses() -> list[tuple[str, str, str]]:
    """(key, English, where) for every t("key", "English") in the page's scripts."""
    out = []
    for name, text in scripts().items():
        for m in T_CALL.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append((m.group("s1"), unescape(m.group("s2")), f"{name}:{line}"))
    return out


def script_keys() -> dict[str, tuple[str, str]]:
    """key -> (English, where), the first use of each key."""
    out: dict[str, tuple[str, str]] = {}
    for key, english, where in script_uses():
        out.setdefault(key, (english, where))
    return out


class _I18nAttrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, tuple[str, str]] = {}
        self._open: list[str] = []  # keys of data-i18n elements whose text is being read
        self._text: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        line = f"index.html:{self.getpos()[0]}"
        for name in I18N_ATTRS[1:]:
            if name in a:
                target = name.removeprefix("data-i18n-")
                self.keys.setdefault(a[name], (a.get(target) or "", line))
        if "data-i18n" in a:
            self._open.append(a["data-i18n"])
            self._text[a["data-i18n"]] = ""
            self.keys.setdefault(a["data-i18n"], ("", line))

    def handle_data(self, data):
        for k in self._open:
            self._text[k] += data

    def handle_endtag(self, tag):
        if self._open and tag != "br":
            k = self._open.pop()
            self.keys[k] = (self._text[k], self.keys[k][1])


def html_keys() -> dict[str, tuple[str, str]]:
    """key -> (English, where) for every data-i18n* attribute of index.html."""
    p = _I18nAttrs()
    p.feed((STATIC_DIR / "index.html").read_text(encoding="utf-8"))
    return p.keys


def zh_dictionary() -> dict[str, str]:
    text = (STATIC_DIR / "i18n.js").read_text(encoding="utf-8")
    m = re.search(r"const zhCN = (\{.*?\n  \});", text, re.S)
    assert m, "i18n.js must define `const zhCN = {…};` (the zh-CN dictionary)"
    try:
        return json.loads(m.group(1))
    except json.JSONDecodeError as e:
        raise AssertionError(f"the zh-CN dictionary in i18n.js must stay strict JSON (double quotes, "
                             f"no trailing comma, no comments): {e}") from None


def used_keys() -> dict[str, tuple[str, str]]:
    return {**html_keys(), **script_keys()}


def test_the_page_uses_keys_the_extraction_sees():
    # Sanity: both kinds of key are found, so the checks below are not vacuous.
    assert {"add.button", "library.search_placeholder", "token.input_label"} <= set(html_keys())
    assert {"queue.count", "library.empty", "health.free"} <= set(script_keys())
    # A t() whose key is not a string literal cannot be checked: write the key out.
    for name, text in scripts().items():
        calls = len(ANY_T_CALL.findall(text))
        literal = len(T_CALL.findall(text))
        assert calls == literal, (f"{name}: {calls - literal} t(...) call(s) without a literal "
                                  f'key and English text: write t("key", "English", vars)')


def test_each_key_has_one_english_text():
    # One key, one meaning: the dictionary has one translation for it.
    first = script_keys()
    for key, english, where in script_uses():
        assert english == first[key][0], (f"{key} means {first[key][0]!r} at {first[key][1]} "
                                          f"but {english!r} at {where}: give the second its own key")


def test_zh_cn_dictionary_has_every_key_the_page_uses():
    zh = zh_dictionary()
    missing = {k: where for k, (_, where) in used_keys().items() if k not in zh}
    assert not missing, ("the zh-CN dictionary (const zhCN in gateway/web/static/i18n.js) lacks "
                         + ", ".join(f"{k} (used at {w})" for k, w in sorted(missing.items())))


def test_zh_cn_dictionary_has_no_stale_keys():
    unused = sorted(set(zh_dictionary()) - set(used_keys()))
    assert not unused, f"the zh-CN dictionary has keys no page uses (remove them): {', '.join(unused)}"


def test_no_english_left_untranslated():
    zh = zh_dictionary()
    same = {k: en for k, (en, _) in used_keys().items()
            if k in zh and zh[k].strip() == en.strip() and en.strip() not in SAME_IN_CHINESE}
    assert not same, f"zh-CN entries still in English: {same}"
    # Latin words inside a Chinese entry are the ones that stay Latin (names, codes, units).
    allowed = {w.lower() for w in SAME_IN_CHINESE} | {"ppv", "fc", "abc", "xyz", "gb", "kb", "mb"}
    for k, text in zh.items():
        words = {w.lower() for w in re.findall(r"[A-Za-z]{2,}", re.sub(r"\{\w+\}", "", text))}
        assert words <= allowed, f"{k}: {text!r} keeps English words {sorted(words - allowed)}"


def test_placeholders_match_the_english():
    zh = zh_dictionary()
    for k, (en, where) in used_keys().items():
        if k in zh:
            assert set(re.findall(r"\{\w+\}", zh[k])) == set(re.findall(r"\{\w+\}", en)), \
                f"{k} ({where}): zh-CN {zh[k]!r} and English {en!r} differ in their {{placeholders}}"
