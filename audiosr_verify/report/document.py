"""The report as data: Report -> Section -> Item -> Table / Figure / Clip.

Filled by the builders in `audiosr_verify.report.sections` (which re-exports these
names), turned into text by `audiosr_verify.report.render`. Pictures and sounds
are carried as encoded bytes; ``to_dict()`` (report.json) only names them.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

# 2: figures carry "mime" and "bytes" (was "png_bytes"); sections have "figures", items "clips".
REPORT_SCHEMA_VERSION = 2
SECTION_STATUSES = ("pass", "fail", "error", "not_available")


@dataclass
class Figure:
    """A picture (encoded image bytes, PNG or WebP) with a title; JSON and Markdown only name it.

    ``panels`` says where each named panel lies in the image (pixels: left, top, right,
    bottom) and ``arrays`` holds what the picture was drawn from (a spectrogram's dB
    values...), so tests can check what is shown; neither is serialised.
    """

    title: str
    image: bytes = field(repr=False)
    caption: str = ""
    mime: str = "image/png"
    alt: str = ""
    panels: dict[str, tuple[int, int, int, int]] = field(default_factory=dict, repr=False)
    arrays: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "caption": self.caption, "mime": self.mime, "bytes": len(self.image)}


@dataclass
class Clip:
    """Something to listen to (an encoded audio file) with a title."""

    title: str
    data: bytes = field(repr=False)
    mime: str
    caption: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "caption": self.caption, "mime": self.mime, "bytes": len(self.data),
                "seconds": round(self.seconds, 3)}


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    title: str = ""
    row_status: list[str | None] | None = None  # per row: pass / fail / info / None
    folded: bool = False  # shown closed (HTML <details>): a long table behind the pictures

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": list(self.columns), "rows": [list(r) for r in self.rows],
                "row_status": None if self.row_status is None else list(self.row_status)}


@dataclass
class Item:
    """One checked thing inside a section (a checkpoint, a golden case, a test file)."""

    name: str
    status: str  # pass | fail | error | not_available | info
    summary: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    clips: list[Clip] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "summary": self.summary,
                "tables": [t.to_dict() for t in self.tables],
                "figures": [f.to_dict() for f in self.figures], "clips": [c.to_dict() for c in self.clips],
                "notes": list(self.notes)}


@dataclass
class Section:
    key: str  # stable identifier: state_dict_parity, functional_parity, golden_regression, property_tests
    title: str
    status: str
    summary: str = ""
    items: list[Item] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)  # section-level overview
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] | None = None  # the underlying check's to_dict(), for machines
    seconds: float | None = None
    figures: list[Figure] = field(default_factory=list)  # section-level pictures, shown before the tables

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "status": self.status, "summary": self.summary,
                "seconds": None if self.seconds is None else round(self.seconds, 2),
                "notes": list(self.notes), "figures": [f.to_dict() for f in self.figures],
                "tables": [t.to_dict() for t in self.tables],
                "items": [i.to_dict() for i in self.items], "data": self.data}


@dataclass
class Report:
    title: str = "AudioSR compatibility report"
    model: str = ""
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    environment: dict[str, str] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    strict: bool = False

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)

    def section_ok(self, s: Section) -> bool:
        return s.status == "pass" or (s.status == "not_available" and not self.strict)

    @property
    def passed(self) -> bool:
        return bool(self.sections) and all(self.section_ok(s) for s in self.sections)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": REPORT_SCHEMA_VERSION, "title": self.title, "ok": self.passed,
                "strict": self.strict, "created": self.created, "model": self.model,
                "environment": dict(self.environment),
                "sections": [s.to_dict() for s in self.sections]}


__all__ = ["REPORT_SCHEMA_VERSION", "SECTION_STATUSES", "Clip", "Figure", "Item", "Report", "Section", "Table"]
