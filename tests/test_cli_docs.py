"""docs/cli.md, the CLI reference, is generated from ``--help``; this fails when it is stale."""

from __future__ import annotations

from pathlib import Path

from weightinit.cli import docs

README = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_readme_cli_reference_is_current():
    text = README.read_text()
    assert docs.START in text and docs.END in text, f"docs/cli.md needs the {docs.START} ... {docs.END} markers"
    expected = docs.replace_section(text, docs.reference())
    assert expected == text, f"docs/cli.md is stale; regenerate it with `{docs.REGENERATE}`"


def test_reference_covers_every_builtin_command():
    reference = docs.reference()
    for name in ("layout", "encode", "decode", "apply", "plugins"):
        assert f"### `weightinit {name}`" in reference
    assert "\x1b[" not in reference  # no colour codes
    assert max(len(line) for line in reference.splitlines() if not line.startswith("<!--")) <= docs.WIDTH


def test_flags_show_no_value_type():
    # typer renders a flag's type as <bool> although a flag takes no value
    reference = docs.reference()
    assert "<bool>" not in reference
    assert "--json" in reference and "--version" in reference


def test_docstring_prose_is_reflowed_and_examples_kept():
    import typer
    import typer.main

    from weightinit.cli.app import _tidy

    def cmd(flag: bool = False) -> None:
        """First line.

        A paragraph written over
        two source lines.

        Examples:

          weightinit x --one
          weightinit x --two
        """

    single = typer.Typer(add_completion=False)
    single.command()(cmd)
    command = _tidy(typer.main.get_command(single))
    paragraphs = command.help.split("\n\n")
    assert paragraphs[1] == "A paragraph written over two source lines."
    assert paragraphs[3] == "  weightinit x --one\n  weightinit x --two"
    assert [p.metavar for p in command.params] == [""]
