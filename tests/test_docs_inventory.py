"""Nothing of the README the documentation site replaced was lost, and the README stays a front door.

The README of commit 398ac46 (1,900 lines, 43 headings, 34 tables) was moved into docs/ (issue 26).
tests/test_docs_readme_inventory.json lists what it held: every heading, and every table by its header
row and the first cell of each of its rows (the row's label: a case, a fault, an option, a metric). Each
heading must still be a heading of a page under docs/ (at any level), and each table must still be a
table of docs/ with the same header holding every one of those rows. Numbers inside rows may be
re-measured (the pages say how); a section, a table or a row may not disappear. The inventory was made
from ``git show 398ac46:README.md`` by ``python tests/test_docs_inventory.py OLD_README.md``, with the same
parser the test reads the pages with.

The README itself: at most 250 lines, its two ``ci:`` blocks (which .ci/run executes) unchanged, and
every relative link of it pointing at a file that exists.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = Path(__file__).with_name("test_docs_readme_inventory.json")
README_MAX_LINES = 250
# .ci/run executes these (README.md, between the ci:setup / ci:test markers): unchanged by the move
CI_SETUP = 'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]" && .venv/bin/audiosr-verify report --output-dir reports/'
CI_TEST = ".venv/bin/python -m pytest -n auto --dist loadgroup"


def _outside_fences(text: str):
    """(line number, line) of the lines outside fenced code blocks."""
    fence = None
    for i, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(`{3,}|~{3,})", line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif line.strip().startswith(fence):
                fence = None
            continue
        if fence is None:
            yield i, line


def _plain(cell: str) -> str:
    """A cell or heading as text: links reduced to their text, whitespace collapsed."""
    cell = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cell)
    return " ".join(cell.split())


def _cells(row: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", row.strip())
    return [_plain(p) for p in parts[1:-1]]


def inventory(text: str) -> dict:
    """Headings and tables (header, first cells of the rows) of a Markdown text, outside code blocks."""
    headings, tables, current = [], [], None
    for _, line in _outside_fences(text):
        m = re.match(r"^(#{1,6}) (.*)$", line)
        if m:
            headings.append(_plain(m.group(2)))
        if line.lstrip().startswith("|"):
            if current is None:
                current = {"header": " | ".join(_cells(line)), "rows": [], "_sep": False}
                tables.append(current)
            elif not current["_sep"] and re.fullmatch(r"\s*\|[\s:|-]+\|\s*", line):
                current["_sep"] = True
            else:
                cells = _cells(line)
                current["rows"].append(cells[0] if cells else "")
        else:
            current = None
    for t in tables:
        del t["_sep"]
    return {"headings": headings, "tables": tables}


def docs_inventory() -> dict:
    pages = sorted((ROOT / "docs").rglob("*.md"))
    headings, tables = [], []
    for page in pages:
        inv = inventory(page.read_text(encoding="utf-8"))
        headings += inv["headings"]
        tables += inv["tables"]
    return {"headings": headings, "tables": tables}


def test_every_heading_of_the_old_readme_is_a_heading_of_the_site():
    old = json.loads(INVENTORY.read_text(encoding="utf-8"))
    assert len(old["headings"]) == 43 and len(old["tables"]) == 34
    have = set(docs_inventory()["headings"])
    missing = [h for h in old["headings"] if h not in have]
    assert not missing, f"sections of the old README with no heading under docs/: {missing}"


def test_every_table_of_the_old_readme_has_a_home():
    old = json.loads(INVENTORY.read_text(encoding="utf-8"))
    docs = docs_inventory()["tables"]
    problems = []
    for table in old["tables"]:
        homes = [t for t in docs if t["header"] == table["header"]]
        if not homes:
            problems.append(f"no table under docs/ with the header | {table['header']} |")
            continue
        best = min(homes, key=lambda t: len(set(table["rows"]) - set(t["rows"])))
        lost = [r for r in table["rows"] if r not in best["rows"]]
        if lost:
            problems.append(f"table | {table['header']} | lost the rows {lost}")
    assert not problems, "\n".join(problems)


def test_the_inventory_parser_sees_a_lost_row_and_a_lost_heading():
    page = "# A\n\n## B\n\n| x | y |\n|---|---|\n| one | 1 |\n| [two](t.md) | 2 \\| 3 |\n\n```text\n# not\n```\n"
    inv = inventory(page)
    assert inv == {"headings": ["A", "B"], "tables": [{"header": "x | y", "rows": ["one", "two"]}]}
    shorter = inventory(page.replace("| one | 1 |\n", "").replace("## B", "## C"))
    assert shorter["tables"][0]["rows"] == ["two"] and "B" not in shorter["headings"]


def test_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"

    def block(tag: str) -> str:
        m = re.search(rf"<!-- ci:{tag} -->\n```bash\n(.*?)\n```\n<!-- /ci:{tag} -->", text, re.S)
        assert m, f"README.md lost its ci:{tag} block, which .ci/run executes"
        return m.group(1)

    assert block("setup") == CI_SETUP
    assert block("test") == CI_TEST


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [link for link in links if not re.match(r"^[a-z]+:", link)]
    assert sum(link.startswith("docs/") for link in local) >= 15, local
    missing = [link for link in local if not (ROOT / link.split("#")[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


if __name__ == "__main__":  # python tests/test_docs_inventory.py OLD_README.md > tests/test_docs_readme_inventory.json
    old = Path(sys.argv[1]).read_text(encoding="utf-8")
    json.dump({"source": "README.md of commit 398ac46, before issue 26 moved it into docs/", **inventory(old)},
              sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
