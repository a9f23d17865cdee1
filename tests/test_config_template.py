"""``deploy/config.template.yaml`` says it lists every key with its default ("Every key is
optional; the values shown are the defaults"). These tests hold it to that against the Config
dataclasses, so a new field or a changed default fails here until the template follows."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from pipeline import config as C

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "config.template.yaml"

# Keys the template shows commented out (`# key: value`) because setting them changes behaviour
# (an exact file mode, folders the API may import from); the comment still names and explains them.
COMMENTED_OUT = {"library.file_mode", "library.import_roots"}


def sections() -> list[tuple[str, type]]:
    """The Config sections that are one dataclass (not lists or per-site maps)."""
    hints = {f.name: f for f in dataclasses.fields(C.Config)}
    out = []
    for name, f in hints.items():
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            out.append((name, type(default)))
    return out


def template_text() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


def section_lines(name: str) -> list[str]:
    """The template's lines from ``name:`` to the next top-level key (comments included)."""
    lines = template_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:"))
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"[a-z_]+:", lines[i])), len(lines))
    return lines[start:end]


def test_the_template_holds_exactly_the_defaults():
    """Loading the template gives the same Config as no file at all, field by field."""
    got, want = C.load(TEMPLATE, {}), C.load(None, {})
    diffs = []

    def walk(a, b, path):
        if dataclasses.is_dataclass(a):
            for f in dataclasses.fields(a):
                walk(getattr(a, f.name), getattr(b, f.name), f"{path}{f.name}.")
        elif a != b:
            diffs.append(f"{path.rstrip('.')}: template {a!r}, code {b!r}")

    walk(got, want, "")
    assert not diffs, "deploy/config.template.yaml disagrees with pipeline/config.py:\n" + "\n".join(diffs)


def test_every_top_level_field_is_in_the_template():
    raw = yaml.safe_load(template_text())
    missing = [f.name for f in dataclasses.fields(C.Config) if f.name not in raw]
    assert not missing, f"top-level keys missing from the template: {missing}"


@pytest.mark.parametrize("name, cls", sections(), ids=[n for n, _ in sections()])
def test_every_section_field_is_in_the_template_with_a_comment(name, cls):
    """Each field is a key of its section (or, for COMMENTED_OUT, a `# key:` line), and a
    comment explains it: on its line, or in the comment block above its group of keys."""
    raw = yaml.safe_load(template_text()).get(name) or {}
    lines = section_lines(name)
    problems = []
    for f in dataclasses.fields(cls):
        key = f"{name}.{f.name}"
        if key in COMMENTED_OUT:
            if not any(re.match(rf"\s*#\s*{f.name}:", line) for line in lines):
                problems.append(f"{key}: no commented-out `# {f.name}:` line")
            continue
        if f.name not in raw:
            problems.append(f"{key}: missing")
            continue
        i = next(i for i, line in enumerate(lines) if re.match(rf"\s+{f.name}:", line))
        if "#" in lines[i].split(":", 1)[1]:
            continue  # an inline comment
        # Walk up over the other keys of the same group to the comment block above it.
        j = i - 1
        while j >= 0 and re.match(r"\s+[a-z_]+:", lines[j]) and "#" not in lines[j]:
            j -= 1
        if j < 0 or not lines[j].lstrip().startswith("#"):
            # The section's own header comment (just above `name:`) may describe every key.
            if not _header_comment_mentions(name, f.name):
                problems.append(f"{key}: no comment explains it")
    assert not problems, "deploy/config.template.yaml:\n" + "\n".join(problems)


def _header_comment_mentions(section: str, key: str) -> bool:
    lines = template_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{section}:"))
    block = []
    for line in reversed(lines[:start]):
        if not line.startswith("#"):
            break
        block.append(line)
    return re.search(rf"\b{key}\b", " ".join(block)) is not None


@pytest.mark.parametrize("section, cls", [("notify.targets", C.NotifyTarget),
                                          ("media_servers", C.MediaServerConfig),
                                          ("sources", C.SourceConfig)])
def test_list_and_site_entries_name_every_field(section, cls):
    """The entries of lists and site maps are shown by example: every field of the entry is
    named in the template's text for that section (a key in an example or in its comment)."""
    top = section.split(".")[0]
    lines = template_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{top}:"))
    # The comment block above the section, the section, and its commented example after it.
    above = []
    for line in reversed(lines[:start]):
        if not line.startswith("#"):
            break
        above.append(line)
    text = "\n".join(above + section_lines(top))
    missing = [f.name for f in dataclasses.fields(cls) if not re.search(rf"\b{f.name}\b", text)]
    assert not missing, f"{section} entries: fields the template never names: {missing}"
