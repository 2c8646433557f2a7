"""What went wrong in an import, said so that a person can fix the file.

Every problem names the file and where in it: ``line N`` for CSV (the header is line 1, so
the number is what an editor shows) and ``row N`` for Parquet (the 0-based row index, as
pyarrow and pandas count). Problems are collected up to a limit rather than stopping at the
first, because fixing an export one error per run is slow; the limit keeps a file that is
wrong on every row from producing a million messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from marketpilot.domain.errors import InvalidInput

MAX_ERRORS = 100


@dataclass(frozen=True, order=True)
class ImportProblem:
    """One problem: `position` is the CSV line or Parquet row index, None for the whole file."""

    file: str
    position: int | None
    column: str | None
    message: str
    unit: str = field(default="line", compare=False)

    def __str__(self) -> str:
        where = self.file if self.position is None else f"{self.file}, {self.unit} {self.position}"
        return f"{where}: {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


class ImportFailed(InvalidInput):
    """The file was rejected and nothing was written. `errors` lists every problem found."""

    code = "import_failed"

    def __init__(self, errors: list[ImportProblem], *, truncated: bool = False) -> None:
        self.errors = list(errors)
        self.truncated = truncated
        files = sorted({e.file for e in self.errors})
        head = f"{len(self.errors)} problem{'s' if len(self.errors) != 1 else ''} in {', '.join(files)}"
        lines = [head + ":"] + [f"  {e}" for e in self.errors]
        if truncated:
            lines.append(f"  (stopped after {len(self.errors)} problems; fix these and run the import again)")
        super().__init__("\n".join(lines))


class ErrorLog:
    """Collects problems for one file up to `limit`; `full` tells the importer to stop reading."""

    def __init__(self, file: str, unit: str, limit: int = MAX_ERRORS) -> None:
        self.file = file
        self.unit = unit
        self.limit = limit
        self.errors: list[ImportProblem] = []
        self.truncated = False

    def __bool__(self) -> bool:
        return bool(self.errors)

    def __len__(self) -> int:
        return len(self.errors)

    @property
    def remaining(self) -> int:
        return max(self.limit - len(self.errors), 0)

    @property
    def full(self) -> bool:
        return len(self.errors) >= self.limit

    def add(self, position: int | None, column: str | None, message: str) -> None:
        if self.full:
            self.truncated = True
            return
        self.errors.append(ImportProblem(self.file, position, column, message, self.unit))

    def failure(self) -> ImportFailed:
        ordered = sorted(self.errors, key=lambda e: (e.position is not None, e.position or 0))
        return ImportFailed(ordered, truncated=self.truncated)
