"""README.zh-CN.md keeps in step with README.md: the same sections, in the same order, with the same code.

Prose is translated, so sections are matched by what a translation keeps as it is: the heading
level, the commands of each fenced code block (comments are prose and may be translated; in a
listing such as the folder tree only the first column, the path, is code) and the set of inline
code spans (commands, paths, config keys, API paths, error messages). When README.md gains or
changes a section, the failure names it, says where it goes in README.zh-CN.md and what differs.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT

EN = ROOT / "README.md"
ZH = ROOT / "README.zh-CN.md"
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
COMMENT = re.compile(r"(^|\s)#(\s.*)?$")  # a shell comment: "#" alone or followed by a space


@dataclass
class Section:
    level: int
    title: str
    parent: str
    blocks: list[tuple[str, ...]] = field(default_factory=list)
    prose: list[str] = field(default_factory=list)

    @property
    def heading(self) -> str:
        return "#" * self.level + " " + self.title

    @property
    def inline_code(self) -> frozenset[str]:
        # A code span may wrap across lines: a line break inside it counts as one space.
        text = " ".join(self.prose)
        return frozenset(re.sub(r"\s+", " ", s.strip()) for s in re.findall(r"`([^`]+)`", text))

    @property
    def key(self) -> tuple:
        return (self.level, tuple(self.blocks), self.inline_code)

    def where(self) -> str:
        return f"'{self.heading}'" + (f" (under '{self.parent}')" if self.parent else "")


def commands(lines: list[str]) -> tuple[str, ...]:
    """The code of a fenced block: each line without its comment, first column only."""
    out = []
    for line in lines:
        code = COMMENT.sub("", line).strip()
        code = re.split(r"\s{2,}", code)[0]
        if code:
            out.append(code)
    return tuple(out)


def sections(path: Path) -> list[Section]:
    out: list[Section] = []
    stack: list[Section] = []
    fence: list[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if fence is not None:
            if FENCE.match(line):
                out[-1].blocks.append(commands(fence))
                fence = None
            else:
                fence.append(line)
            continue
        if FENCE.match(line):
            assert out, f"{path.name}: a code block before the first heading"
            fence = []
            continue
        m = HEADING.match(line)
        if m:
            level = len(m.group(1))
            while stack and stack[-1].level >= level:
                stack.pop()
            s = Section(level, m.group(2), stack[-1].heading if stack else "")
            stack.append(s)
            out.append(s)
        elif out:
            out[-1].prose.append(line)
    assert fence is None, f"{path.name}: a code block is never closed"
    return out


def describe(en: Section, zh: Section) -> str:
    """What differs between a section and its translation."""
    if en.level != zh.level:
        return f"README.md has it at level {en.level}, README.zh-CN.md at level {zh.level}"
    if en.blocks != zh.blocks:
        if len(en.blocks) != len(zh.blocks):
            return (f"README.md has {len(en.blocks)} code block(s), README.zh-CN.md "
                    f"{len(zh.blocks)}: {en.blocks} vs {zh.blocks}")
        for i, (a, b) in enumerate(zip(en.blocks, zh.blocks), 1):
            if a != b:
                diff = [d for d in difflib.ndiff(a, b) if d[:1] in "+-"]
                return f"code block {i} differs (- README.md, + README.zh-CN.md): {diff}"
    missing = sorted(en.inline_code - zh.inline_code)
    extra = sorted(zh.inline_code - en.inline_code)
    return (f"inline code README.zh-CN.md lacks: {missing}" if missing else "") + \
        ("; " if missing and extra else "") + \
        (f"inline code only README.zh-CN.md has: {extra}" if extra else "")


def first_difference(en: list[Section], zh: list[Section]) -> str | None:
    """None when the two match, else a sentence naming the first section that differs."""
    sm = difflib.SequenceMatcher(a=[s.key for s in en], b=[s.key for s in zh], autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            continue
        after = f"after '{zh[j1 - 1].heading}'" if j1 else "at the top"
        if op == "delete":
            names = ", ".join(s.where() for s in en[i1:i2])
            return (f"README.zh-CN.md lacks the section(s) {names} of README.md (section {i1 + 1}): "
                    f"translate and insert {after} in README.zh-CN.md")
        if op == "insert":
            names = ", ".join(s.where() for s in zh[j1:j2])
            return (f"README.zh-CN.md has section(s) {names} {after} that README.md does not have "
                    f"(README.md section {i1 + 1} is '{en[i1].heading if i1 < len(en) else 'the end'}')")
        if i2 - i1 != j2 - j1:
            return (f"from README.md section {i1 + 1} on, the sections differ: README.md has "
                    f"{', '.join(s.where() for s in en[i1:i2])} where README.zh-CN.md has "
                    f"{', '.join(s.where() for s in zh[j1:j2])}")
        return (f"README.md section {i1 + 1} {en[i1].where()} does not match README.zh-CN.md "
                f"section {j1 + 1} {zh[j1].where()}: {describe(en[i1], zh[j1])}")
    return None


def test_zh_readme_has_the_same_sections_and_code():
    en, zh = sections(EN), sections(ZH)
    assert len(en) > 10 and sum(len(s.blocks) for s in en) >= 4  # the parser saw the README
    problem = first_difference(en, zh)
    assert problem is None, problem


def test_comparison_names_a_section_added_to_readme(tmp_path):
    # The check itself: a new English section, and a changed command, are named as such.
    en = sections(EN)
    text = EN.read_text(encoding="utf-8").replace(
        "### Configuration\n", "### Video\n\n`GET /api/resource/{avid}/video` streams it.\n\n### Configuration\n", 1)
    added = tmp_path / "README.md"
    added.write_text(text, encoding="utf-8")
    problem = first_difference(sections(added), sections(ZH))
    assert problem and "lacks the section(s) '### Video' (under '## Using it')" in problem, problem
    assert "after '### API'" in problem, problem
    changed = tmp_path / "README.changed.md"
    changed.write_text(EN.read_text(encoding="utf-8").replace("make test    #", "make check   #", 1), encoding="utf-8")
    problem = first_difference(sections(changed), sections(ZH))
    assert problem and "'## Two commands'" in problem and "make check" in problem, problem
    assert first_difference(en, en) is None


def test_readmes_link_to_each_other_at_the_top():
    en_top = EN.read_text(encoding="utf-8").splitlines()[:5]
    zh_top = ZH.read_text(encoding="utf-8").splitlines()[:5]
    assert any("(README.zh-CN.md)" in line for line in en_top), en_top
    assert any("(README.md)" in line for line in zh_top), zh_top


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def test_links_within_each_readme_resolve():
    for path in (EN, ZH):
        anchors = {slug(s.title) for s in sections(path)}
        links = re.findall(r"\]\(#([^)]+)\)", path.read_text(encoding="utf-8"))
        assert links or path is EN, path.name
        broken = [a for a in links if a not in anchors]
        assert not broken, f"{path.name}: links to missing headings {broken}"
