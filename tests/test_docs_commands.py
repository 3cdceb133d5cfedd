"""Every ``hwgen`` command the README and the user guide (docs/cli.md) show
exists, with the flags given: each is parsed by hwgen's own argument
parser (the files it names need not exist; parsing does not open them)."""
import re
import shlex
from pathlib import Path

import pytest

from hwgen.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", "docs/cli.md"]


def commands(page):
    """The ``hwgen ...`` lines of a page's code blocks, comments dropped and
    optional parts (``[--pipeline 2]``) taken as given."""
    out, in_code = [], False
    for line in (ROOT / page).read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        text = line.split("#", 1)[0].strip()
        if in_code and text.startswith("hwgen "):
            out.append(re.sub(r"[\[\]]", "", text))
    return out


@pytest.mark.parametrize("page", PAGES)
def test_every_command_shown_parses(page):
    cmds = commands(page)
    assert len(cmds) >= 8, f"{page} shows only {len(cmds)} hwgen commands"
    parser = build_parser()
    for cmd in cmds:
        argv = shlex.split(cmd)[1:]
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{page}: `{cmd}` does not parse (exit {exc.code})")


def test_the_readme_names_every_page():
    readme = (ROOT / "README.md").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, page.name
