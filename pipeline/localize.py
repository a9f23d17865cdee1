"""Titles people can read: the scrape stage's last step, over one title's metadata.

The metadata JSON keeps every form of the title, so nothing is lost and each reader picks:

- ``title``: the title in the catalogue's language (Traditional → Simplified when
  ``translation.chinese_conversion`` is ``t2s``);
- ``original_title``: exactly as the catalogue printed it;
- ``translated_title`` / ``translated_plot``: the translator's, when one is configured and
  answered; absent (or kept from an earlier answer for the same text) when it did not;
- ``translation``: per field, what the translation was made from (``from``), by which
  ``model``, into which ``target_language``, and when (``at``). The same text, model and
  language are not asked again unless a refresh of the metadata forces it.

A translator that is down, slow or answers garbage never fails anything: the field stays
untranslated and a warning says so; the next scrape (a ``refresh``) asks again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from pipeline import chinese
from pipeline.avid import Avid
from pipeline.config import HttpConfig, TranslationConfig
from pipeline.errors import TranslationError
from pipeline.store import ResourceStore
from pipeline.translate import Translator

__all__ = ["Localized", "localize", "localize_stored", "translation_source"]

@dataclass
class Localized:
    """What :func:`localize` decided: ``fields`` to write into the metadata, ``warnings`` for
    the user, and a ``report`` for the stage's event."""

    fields: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def translation_source(meta: Mapping[str, Any], what: str) -> str:
    """The text the translation of ``what`` is made from: the catalogue's own title (the
    translator does best with the original), else the title known, else the source page's."""
    if what == "title":
        keys = ("original_title", "title", "source_title")
    else:
        keys = (what,)
    for k in keys:
        v = meta.get(k)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return ""


def localize(meta: Mapping[str, Any], cfg: TranslationConfig, translator: Translator | None, *,
             force: bool = False, now: float = 0.0) -> Localized:
    """Convert and translate ``meta`` as ``cfg`` says; ``force`` asks the translator again
    even for a text it translated before."""
    out = Localized()
    out.fields.update(chinese.converted_fields(meta, cfg.chinese_conversion))
    if out.fields:
        out.report["converted"] = sorted(out.fields)
    if translator is None:
        return out
    merged = {**meta, **out.fields}
    done = dict(meta.get("translation") or {}) if isinstance(meta.get("translation"), Mapping) else {}
    translated, reused = [], []
    for what in cfg.fields:
        text = translation_source(merged, what)
        if not text:
            continue
        key = f"translated_{what}"
        made = {"from": text, "model": cfg.model, "target_language": cfg.target_language}
        before = done.get(what) if isinstance(done.get(what), Mapping) else {}
        same = bool(meta.get(key)) and all(before.get(k) == v for k, v in made.items())
        if same and not force:
            reused.append(what)
            continue
        try:
            result = translator.translate(text, what)
        except TranslationError as e:
            out.warnings.append(f"{what} left untranslated: {e}; a refresh of the metadata asks again")
            if meta.get(key) and before.get("from") != text:
                out.fields[key] = ""  # an answer for another text is not this one's translation
            continue
        out.fields[key] = result
        done[what] = {**made, "at": now}
        translated.append(what)
    if translated:
        out.fields["translation"] = done
    out.report.update(translated=translated, translation_reused=reused)
    return out


def localize_stored(store: ResourceStore, avid: Avid, cfg: TranslationConfig, http: HttpConfig, *,
                    force: bool = False, now: float = 0.0) -> Localized:
    """:func:`localize` over the metadata ``store`` holds for ``avid``,
    the fields written back. The scrape stage and the importer both end with it, so a title
    reads the same however it came into the library."""
    if not cfg.enabled and cfg.chinese_conversion == "none":
        return Localized()
    translator = Translator(cfg, http) if cfg.enabled else None
    got = localize(store.read_meta(avid) or {}, cfg, translator, force=force, now=now)
    if got.fields:
        store.update_meta(avid, **got.fields)
    return got
