"""docs/tutorial.md's code blocks run, in order, as a user would run them."""
import re
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"


def blocks():
    return re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(), flags=re.S)


def test_the_tutorial_has_its_steps():
    code = "\n".join(blocks())
    for step in ("hwgen.export(", "art.predict(", "hwgen.generate_rtl(", "hwgen.simulate(", "hwgen.synthesize("):
        assert step in code


@pytest.mark.slow
def test_the_tutorial_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    scope = {"__name__": "tutorial"}
    for k, code in enumerate(blocks()):
        exec(compile(code, f"{TUTORIAL}:block{k}", "exec"), scope)
    out = capsys.readouterr().out
    assert "0 mismatches" in out
    assert scope["result"].ok and scope["result"].vectors == len(scope["x_test"])
    assert (tmp_path / "rtl_mlp" / "hwgen_top.v").is_file() and (tmp_path / "mlp.hwgen").is_file()
