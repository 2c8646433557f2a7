"""Screening names against imported sanctions and blacklist lists, with fuzzy matching.

Lists are imported from CSV (``name,country`` with a header; `list_name` names the list,
e.g. ``eu-sanctions`` or ``internal-blacklist``) into ``screening_entries``. Matching
normalises names (case, accents, punctuation, legal-form suffixes such as GmbH or Ltd) and
scores them with rapidfuzz's ``token_sort_ratio`` (order-insensitive, typo-tolerant); the best score over the
list decides: at or above `hit` a match, above `near` a near match for review. A seller is
screened on its company name and on every beneficial owner's name.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz, process
from sqlalchemy import select

from marketpilot.domain.errors import InvalidInput
from marketpilot.platform.db import Database
from marketpilot.workflows.tables import ScreeningEntry

LEGAL_FORMS = re.compile(
    r"\b(gmbh|ag|kg|ohg|ug|ltd|limited|llc|inc|plc|sa|sas|sarl|srl|spa|bv|nv|oy|ab|as|sp z o o|s l|s a|co|company)\b"
)


def normalize(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    text = text.replace(".", "")  # "B.V." -> "bv", "S.A." -> "sa"
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    text = LEGAL_FORMS.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True, slots=True)
class ScreeningHit:
    query: str
    matched: str
    list_name: str
    score: float


def _score(query: str, choice: str, **_: object) -> float:
    # token_sort_ratio: word order does not matter, typos cost a little; unlike
    # token_set_ratio, one shared word ("Acme" in "Acme Trading") is not a full match.
    return float(fuzz.token_sort_ratio(query, choice))


class Screener:
    def __init__(self, entries: Iterable[tuple[str, str]], *, hit: float = 88.0, near: float = 80.0) -> None:
        self.hit, self.near = hit, near
        pairs = [(normalize(name), list_name) for name, list_name in entries]
        self._names = [n for n, _ in pairs if n]
        self._lists = [lst for n, lst in pairs if n]

    @classmethod
    def from_db(cls, db: Database, **thresholds: float) -> Screener:
        with db.read() as s:
            rows = s.execute(select(ScreeningEntry.name, ScreeningEntry.list_name)).all()
        return cls([(r.name, r.list_name) for r in rows], **thresholds)

    def best(self, name: str) -> ScreeningHit | None:
        query = normalize(name)
        if not query or not self._names:
            return None
        found = process.extractOne(query, self._names, scorer=_score)
        if found is None:
            return None
        matched, score, index = found
        return ScreeningHit(query=name, matched=matched, list_name=self._lists[index], score=float(score))

    def screen(self, names: Iterable[str]) -> list[ScreeningHit]:
        """Hits at or above `near`, best first."""
        hits = [h for h in (self.best(n) for n in names) if h is not None and h.score >= self.near]
        return sorted(hits, key=lambda h: -h.score)


def import_list(db: Database, path: Path, list_name: str) -> int:
    """Import a CSV list (header ``name`` and optionally ``country``); returns names added.
    Names already on the list are skipped, so re-importing an updated list is safe."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "name" not in reader.fieldnames:
            raise InvalidInput(f"{path}: the first line must be a header with a 'name' column")
        rows = []
        for line, row in enumerate(reader, start=2):
            name = (row.get("name") or "").strip()
            if not name:
                raise InvalidInput(f"{path}:{line}: empty name")
            country = (row.get("country") or "").strip().upper() or None
            rows.append((name, normalize(name), country))
    with db.session() as s:
        known = set(s.scalars(select(ScreeningEntry.normalized).where(ScreeningEntry.list_name == list_name)))
        added = 0
        for name, normalized, country in rows:
            if normalized in known or not normalized:
                continue
            s.add(ScreeningEntry(list_name=list_name, name=name, normalized=normalized, country=country))
            known.add(normalized)
            added += 1
    return added
