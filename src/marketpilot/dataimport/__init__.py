"""Data import: documented CSV/Parquet schemas per entity, validated, all-or-nothing.

Modules, in the order a file goes through them: `schemas` (the columns of every kind),
`reader` (streaming CSV/Parquet chunks with line numbers), `validate` (typing and checking
cells), `kinds` (per kind: references, table rows, events), `bulk` (batched upserts),
`duplicates` (repeated keys), `importer` (the transaction around it all), `errors` (what
the user is told); `docs` renders the column reference of docs/data-import.md.
"""

from marketpilot.dataimport.errors import ImportFailed, ImportProblem
from marketpilot.dataimport.importer import ImportReport, import_file

__all__ = ["ImportFailed", "ImportProblem", "ImportReport", "import_file"]
