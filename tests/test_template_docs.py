"""docs/template.md says what the projects it compares do today (issue 26, item 13)."""

from __future__ import annotations

from pathlib import Path

TEMPLATE_DOC = Path(__file__).parent.parent / "docs" / "template.md"


def column(heading: str) -> str:
    """The cells of the comparison table's column headed `heading`, one per line."""
    text = TEMPLATE_DOC.read_text()
    table = text[text.rindex("\n", 0, text.index(f"| {heading} |")) + 1 :].split("\n\n")[0]
    rows = table.splitlines()
    index = [cell.strip() for cell in rows[0].split("|")].index(heading)
    return "\n".join(row.split("|")[index].strip() for row in rows[2:])


def test_full_stack_template_is_cloned_and_deploys_to_fastapi_cloud() -> None:
    full_stack = column("full-stack-fastapi-template")
    assert "Copier removed in its PR #2430" in full_stack
    assert "FastAPI Cloud" in full_stack
    assert "cookiecutter" not in full_stack.lower()
