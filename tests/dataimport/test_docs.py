"""docs/data-import.md shows exactly the columns the importer accepts."""

from __future__ import annotations

from marketpilot.dataimport.docs import BEGIN, DOC, END, render_markdown, splice
from marketpilot.dataimport.schemas import SCHEMAS


def test_the_column_reference_in_the_docs_is_generated_from_the_schemas() -> None:
    current = DOC.read_text()
    assert current == splice(current, render_markdown()), (
        "docs/data-import.md is stale: run `python -m marketpilot.dataimport.docs`")


def test_every_kind_and_column_appears_in_the_reference() -> None:
    generated = DOC.read_text().split(BEGIN, 1)[1].split(END, 1)[0]
    for schema in SCHEMAS.values():
        assert f"### `{schema.kind}`" in generated
        for column in schema.columns:
            assert f"| `{column.name}` |" in generated
