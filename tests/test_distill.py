"""The learned logit scale and knowledge distillation from a float teacher."""
import json

import numpy as np
import pytest
import torch

from hwgen.errors import HwgenError

from conftest import hwgen

TINY = dict(hidden=[8], epochs=2, threads=1, log=None)


@pytest.fixture(scope="module")
def digits():
    from hwgen.training.data import load_dataset
    return load_dataset("digits")


def test_logit_scale_is_learned_and_export_drops_it(digits):
    from hwgen.core import artifact, reference
    from hwgen.training.exporter import export_model
    from hwgen.training.nn import LogitScale
    from hwgen.training.train import train
    model, info = train(data=digits, **TINY)
    assert isinstance(model.scores, LogitScale) and info["logit_scale"] is True
    assert float(model.scores.log_scale.detach()) != 0.0          # trained, not left at exp(0) = 1
    x = torch.as_tensor(digits.x_test[:64], dtype=torch.float32)
    with torch.no_grad():
        model.scores.log_scale.fill_(0.0)
        base = model(x)
        model.scores.log_scale.fill_(3.0)
        assert torch.allclose(model(x), base * np.exp(3.0), rtol=1e-5)
    a = artifact.dumps(export_model(model, info, digits.input_bits))
    with torch.no_grad():
        model.scores.log_scale.fill_(-2.0)
    b = artifact.dumps(export_model(model, info, digits.input_bits))
    assert a == b                                         # the factor is not in the artifact
    integer = artifact.loads(a)
    pred = reference.infer(integer, digits.x_test).pred
    with torch.no_grad():
        float_pred = model(torch.as_tensor(digits.x_test, dtype=torch.float32)).argmax(1).numpy()
    assert (pred == float_pred).mean() > 0.97             # same argmax whatever the factor


def test_checkpoints_without_the_option_load_as_before(digits, tmp_path):
    """A checkpoint written before --logit-scale existed has no such
    parameter: it loads as a network without one."""
    from hwgen.training.train import load_checkpoint, save_checkpoint, train
    model, info = train(data=digits, logit_scale=False, **TINY)
    assert isinstance(model.scores, torch.nn.Identity)
    del info["logit_scale"], info["distill"]
    save_checkpoint(model, info, tmp_path / "old.pt")
    loaded, _ = load_checkpoint(tmp_path / "old.pt")
    assert isinstance(loaded.scores, torch.nn.Identity)
    x = torch.as_tensor(digits.x_test[:32], dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_float_teacher_mirrors_the_network():
    from hwgen.training.nn import float_teacher
    mlp = float_teacher((1, 8, 8), None, [16, 12], 10)
    linears = [m for m in mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 16), (16, 12), (12, 10)]
    assert not isinstance(mlp[0], torch.nn.Dropout)      # no dropout on the pixels
    assert any(isinstance(m, torch.nn.ReLU) for m in mlp)
    cnn = float_teacher((1, 28, 28), [4, "p", 8, "p"], [16], 10)
    assert cnn(torch.zeros(3, 784)).shape == (3, 10)
    convs = [m for m in cnn if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.padding) for m in convs] == [(1, 4, (0, 0)), (4, 8, (0, 0))]
    assert [m for m in cnn if isinstance(m, torch.nn.Linear)][0].in_features == 8 * 5 * 5


class _Always(torch.nn.Module):
    """A 'teacher' that is sure of one class whatever it sees."""

    def __init__(self, cls, n=10):
        super().__init__()
        self.cls, self.n = cls, n

    def forward(self, x):
        out = torch.full((x.shape[0], self.n), -20.0)
        out[:, self.cls] = 20.0
        return out


def test_distillation_pulls_the_student_towards_the_teacher(digits):
    """With the whole loss on the teacher (distill 1), a teacher that always
    says 3 makes a student that says 3; with distill 0 it is ignored."""
    from hwgen.training.train import evaluate, train
    kw = dict(data=digits, hidden=[16], epochs=3, threads=1, log=None)
    student, info = train(distill=1.0, teacher=_Always(3), **kw)
    with torch.no_grad():
        pred = student(torch.as_tensor(digits.x_test, dtype=torch.float32)).argmax(1)
    assert (pred == 3).float().mean() > 0.95
    assert info["distill"] == 1.0 and info["teacher_accuracy"] == pytest.approx((digits.y_test == 3).mean())
    plain, info = train(distill=0.0, teacher=_Always(3), **kw)
    assert evaluate(plain, digits.x_test, digits.y_test) > 0.5 and "teacher_accuracy" not in info


def test_distill_trains_its_teacher_and_the_teacher_checkpoint_round_trips(digits, tmp_path):
    from hwgen.training.train import evaluate, load_checkpoint, load_teacher, save_checkpoint, train, train_teacher
    teacher, tinfo = train_teacher(data=digits, hidden=[16], epochs=3, threads=1, log=None)
    assert tinfo["teacher"] is True and tinfo["float_accuracy"] > 0.8
    save_checkpoint(teacher, tinfo, tmp_path / "t.pt")
    loaded, info = load_teacher(tmp_path / "t.pt")
    x = torch.as_tensor(digits.x_test[:50], dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(loaded(x), teacher(x))
    assert evaluate(loaded, digits.x_test, digits.y_test) == tinfo["float_accuracy"]
    with pytest.raises(HwgenError, match="holds a float teacher"):
        load_checkpoint(tmp_path / "t.pt")
    # train() without a teacher trains the same one first (same seed, same settings)
    student, sinfo = train(data=digits, hidden=[16], epochs=3, threads=1, log=None, distill=0.5)
    assert sinfo["teacher_accuracy"] == tinfo["float_accuracy"]
    save_checkpoint(student, sinfo, tmp_path / "s.pt")
    with pytest.raises(HwgenError, match="holds an HBB network"):
        load_teacher(tmp_path / "s.pt")


def test_cli_distill_options(tmp_path):
    r = hwgen("train", "--epochs", "2", "--hidden", "8", "--distill", "0.9", "--threads", "1",
              "-o", tmp_path / "m.pt")
    assert r.returncode == 0, r.stderr
    assert "training the float teacher (2 epochs)" in r.stderr and "teacher epoch   2/2" in r.stderr
    for args, needle in [(["--distill", "1.5"], "within 0..1"),
                         (["--model", "transformer", "--distill", "0.5"], "mlp and cnn models only")]:
        r = hwgen("train", "--epochs", "1", *args, "-o", tmp_path / "x.pt")
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_sweep_distils_every_point_from_one_cached_teacher(tmp_path):
    out = tmp_path / "kd"
    args = ["sweep", "--epochs", "2", "--hidden", "8", "--bits", "1", "1.4", "--distill", "0.9",
            "--threads", "1", "-o", out]
    r = hwgen(*args)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("teacher_s0 (float, for --distill)") == 1 and "teacher epoch   2/2" in r.stderr
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert len(runs) == 2 and len({run["config"]["teacher_accuracy"] for run in runs}) == 1
    assert (out / "runs" / "teacher_s0.pt").is_file()
    md = (out / "sweep.md").read_text()
    assert "Settings besides the defaults: `--hidden 8`, `--distill 0.9`, `--threads 1`" not in md
    assert "Settings besides the defaults: `--hidden 8`, `--distill 0.9`." in md
    # a new grid point reuses the cached teacher
    r = hwgen(*args[:-2], "--bits", "1", "1.4", "2", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "teacher_s0 (float" not in r.stderr and "3 runs, 2 already done, 1 to train" in r.stderr
    # a teacher trained under other settings is refused, not reused
    r = hwgen("sweep", "--epochs", "3", "--hidden", "8", "--bits", "3", "--distill", "0.9", "--threads", "1",
              "-o", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "was trained with epochs = 2, not 3" in r.stderr
