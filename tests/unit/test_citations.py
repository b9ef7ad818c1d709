"""Every citation in the repository leads somewhere a reader of the repository can open.

Code and docs cite their reasons as ``docs/reference/aws.md §B.2`` (a section of a page in
this repository), as Markdown links, or as public URLs. This fails on a cited file that is
not in the repository, on a cited section its page does not have, on a Markdown link to a
missing file or heading, and on an absolute path of a developer's machine.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".json", ".txt", ".cfg", ".sh", ".html"}
TEXT_NAMES = {"Makefile", "run", "pick-python"}

# A section citation: §3.4, §B.2, §H, §5.
SECTION = re.compile(r"§([A-Z](?:\.\d+)*|\d+(?:\.\d+)*)")
# A cited Markdown file: a path-like token ending in .md (not part of a URL).
MD_PATH = re.compile(r"(?<![\w/:.-])((?:\.\.?/)?[\w.-]+(?:/[\w.-]+)*\.md)\b")
# Markdown links and their targets: [text](target).
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
# Reference-style links, [text][label], and the definitions of their labels, [label]: url.
REF_LINK = re.compile(r"\[([^\]]*)\]\[([^\]]+)\]")
REF_DEFINITION = re.compile(r"^\s*\[([^\]]+)\]:\s*(\S+)", re.MULTILINE)
# Absolute paths of a machine (a checkout, a home folder); Lambda's /tmp and container
# paths such as /workspace are facts of the product, not of a machine.
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|Users|home/[\w.-]+)/|\.pyenv/versions/\d")


def repo_files() -> list[Path]:
    """Tracked files and untracked ones git does not ignore: a new file is checked too."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    paths = [ROOT / name for name in listed]
    return [
        p
        for p in paths
        if p.is_file()
        and (p.suffix in TEXT_SUFFIXES or p.name in TEXT_NAMES)
        and "published" not in p.parts  # captured AWS events, kept byte for byte
        and p != Path(__file__).resolve()  # its examples of bad citations are meant to fail
    ]


@cache
def headings(page: Path) -> tuple[str, ...]:
    return tuple(
        line.lstrip("#").strip()
        for line in page.read_text(encoding="utf-8").splitlines()
        if re.match(r"#{1,6} ", line)
    )


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", ""))
    return text.replace(" ", "-")


def resolve(target: str, cited_from: Path) -> Path | None:
    """The cited file or folder, relative to the citing file's folder or to the root."""
    for base in (cited_from.parent, ROOT):
        candidate = (base / target).resolve()
        if candidate.exists() and ROOT in candidate.parents:  # a folder is a fine link too
            return candidate
    return None


def has_section(page: Path, section: str) -> bool:
    pattern = re.compile(rf"{re.escape(section)}(?:[.\s]|$)")
    return any(pattern.match(heading) for heading in headings(page))


def problems_in(path: Path) -> list[str]:
    found: list[str] = []
    where = path.relative_to(ROOT)
    text = path.read_text(encoding="utf-8")
    labels = {m.group(1).lower(): m.group(2) for m in REF_DEFINITION.finditer(text)}
    in_code = False
    for number, line in enumerate(text.splitlines(), 1):
        at = f"{where}:{number}"
        if MACHINE_PATH.search(line):
            found.append(f"{at}: an absolute machine path: {line.strip()[:90]}")
        if path.suffix == ".md" and line.lstrip().startswith("```"):
            in_code = not in_code
        links = [(m.start(1), m.end(1), m.group(2)) for m in LINK.finditer(line)]
        for match in REF_LINK.finditer(line) if path.suffix == ".md" and not in_code else ():
            target = labels.get(match.group(2).lower())
            if target is None:
                found.append(f"{at}: [{match.group(2)}] is a link label the page never defines")
            links.append((match.start(1), match.end(1), target or ""))
        for _, _, target in links:
            found += _link_problems(target, path, at)
        for match in MD_PATH.finditer(line):
            if _inside_url(line, match.start()) or _in_link_text(match.start(), links):
                continue  # the link's own target is what is checked
            if path.suffix == ".py" and _is_quoted_name(line, match):
                continue  # "name.md" in code is a path being built, not a citation
            if resolve(match.group(1), path) is None:
                found.append(f"{at}: cites {match.group(1)}, which is not in the repository")
        for match in SECTION.finditer(line):
            found += _section_problems(line, match, links, path, at)
    return found


def _is_quoted_name(line: str, match: re.Match[str]) -> bool:
    return "/" not in match.group(1) and line[match.start() - 1 : match.start()] in {'"', "'"}


def _in_link_text(start: int, links: list[tuple[int, int, str]]) -> bool:
    return any(begin <= start < end for begin, end, _ in links)


def _is_reference_page(path: Path) -> bool:
    """A page of docs/reference numbers its own sections: a bare § there cites itself."""
    return path.parent == ROOT / "docs" / "reference" and path.suffix == ".md"


def _inside_url(line: str, start: int) -> bool:
    word_start = max(line.rfind(ch, 0, start) for ch in " (<`\"'[") + 1
    return "://" in line[word_start:start]


def _link_problems(target: str, path: Path, at: str) -> list[str]:
    if re.match(r"[a-z]+:", target) or (target.startswith("#") and path.suffix != ".md"):
        return []
    file_part, _, anchor = target.partition("#")
    page = resolve(file_part, path) if file_part else path
    if page is None:
        return [f"{at}: links to {file_part}, which is not in the repository"]
    if anchor and page.suffix == ".md" and anchor not in {slug(h) for h in headings(page)}:
        return [f"{at}: links to #{anchor}, a heading {page.name} does not have"]
    return []


def _section_problems(
    line: str,
    match: re.Match[str],
    links: list[tuple[int, int, str]],
    path: Path,
    at: str,
) -> list[str]:
    section = match.group(1)
    inside = [target for start, end, target in links if start <= match.start() < end]
    if inside:
        cited = inside[0].partition("#")[0]
    else:
        before = [
            m.group(1)
            for m in MD_PATH.finditer(line, 0, match.start())
            if not _inside_url(line, m.start()) and not _in_link_text(m.start(), links)
        ]
        if not before and not _is_reference_page(path):
            return [f"{at}: §{section} does not say which page it cites (name the .md first)"]
        cited = before[-1] if before else path.name
    page = resolve(cited, path)
    if page is None:
        return []  # reported once, as a missing file
    if not has_section(page, section):
        return [f"{at}: cites {cited} §{section}, a section that page does not have"]
    return []


def test_the_scan_reads_the_code_and_the_docs() -> None:
    # Given the repository's files, then both code and docs are among those checked
    names = {p.relative_to(ROOT).as_posix() for p in repo_files()}
    assert "docs/reference/aws.md" in names
    assert "layers/stack_core/fargate_stack/aws/ecs.py" in names


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("# see docs/reference/aws.md §B.2", []),
        ("# see docs/reference/aws.md §Z.9", ["a section that page does not have"]),
        ("# see aws-facts.md §B.2", ["not in the repository"]),
        ("# the reference says §3.4", ["does not say which page"]),
        ("# in /work/main/local/out", ["an absolute machine path"]),
        ("# [x](docs/reference/aws.md#b2-runtask-idempotency)", []),
        ("# [x](docs/reference/aws.md#no-such-heading)", ["a heading aws.md does not have"]),
        ("# https://github.com/buildkite/docs/blob/main/pages/x.md is public", []),
        ('OUT = ROOT / "docs" / "configuration.md"', []),
    ],
)
def test_the_checker_tells_a_good_citation_from_a_bad_one(line: str, expected: list[str]) -> None:
    # Given one line in a code file of the repository, when it is checked,
    # then it is accepted, or rejected for the expected reason
    assert_checked_as("tests/unit/_citation_probe.py", line + "\n", expected)


def assert_checked_as(name: str, text: str, expected: list[str]) -> None:
    probe = ROOT / name
    probe.write_text(text, encoding="utf-8")
    try:
        found = problems_in(probe)
    finally:
        probe.unlink()
    assert len(found) == len(expected), found
    for problem, words in zip(found, expected, strict=True):
        assert words in problem


@pytest.mark.parametrize(
    ("page", "text", "expected"),
    [
        (
            "docs/_probe.md",
            "The [`start.md`][start] page.\n\n[start]: https://x.test/start.md\n",
            [],
        ),
        ("docs/_probe.md", "The [`start.md`][start] page.\n", ["never defines"]),
        ("docs/_probe.md", "See `start.md` for more.\n", ["not in the repository"]),
        ("docs/_probe.md", "As §3.4 says.\n", ["does not say which page"]),
        ("docs/_probe.md", "[§3.4](reference/stacks-api.md#no-such-heading)\n", ["does not have"]),
        ("docs/reference/_probe.md", "# Probe\n\n## 1. One\n\nAs §1 says.\n", []),
        ("docs/reference/_probe.md", "# Probe\n\n## 1. One\n\nAs §2 says.\n", ["does not have"]),
        ("docs/_probe.md", "```python\nr['Properties']['CodeUri'] = 1\n```\n", []),
    ],
)
def test_the_checker_reads_markdown_pages_as_markdown(
    page: str, text: str, expected: list[str]
) -> None:
    # Given a Markdown page of the repository, when it is checked, then reference links,
    # its own sections (on a reference page) and code blocks are read as Markdown
    assert_checked_as(page, text, expected)


def test_every_citation_resolves() -> None:
    # Given every text file of the repository, when each is checked, then nothing is wrong
    found = [problem for path in repo_files() for problem in problems_in(path)]
    assert not found, f"{len(found)} citations lead nowhere:\n" + "\n".join(found[:60])
