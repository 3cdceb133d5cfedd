import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from hwgen import artifact
from hwgen.artifact import Layer, Model


# Synthesis results are cached by content hash; the tests use a cache of their
# own (inherited by the CLI subprocesses), empty at the start of each run.
os.environ["HWGEN_CACHE"] = tempfile.mkdtemp(prefix="hwgen-test-cache-")


def random_model(rng, sizes, input_bits=4, max_bits=3, frac_bits=8, prune=0.1):
    """A random but valid integer model: layer widths ``sizes`` (inputs first)."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        first, last = i == 0, i == len(sizes) - 2
        nbits = rng.integers(1, max_bits + 1, size=(fan_out, fan_in)).astype(np.uint8)
        nbits[rng.random((fan_out, fan_in)) < prune] = 0
        b = np.arange(1, max_bits + 1).reshape(-1, 1, 1)
        planes = (rng.integers(0, 2, size=(max_bits, fan_out, fan_in)) * (nbits[None] >= b)).astype(np.uint8)
        alpha = np.tile(rng.integers(1, 2 ** frac_bits + 1, size=max_bits), (fan_out, 1)).astype(np.int64)
        layer = Layer(name=f"fc{i}", input="uint" if first else "binary",
                      input_bits=input_bits if first else 1, output="scores" if last else "threshold",
                      nbits=nbits, planes=planes, alpha=alpha)
        if last:
            layer.bias = rng.integers(-50, 51, size=fan_out).astype(np.int64)
        else:
            lo, hi = layer.bounds()
            # thresholds anywhere in (and just outside) the reachable range
            layer.threshold = np.array([rng.integers(l - 1, h + 2) for l, h in zip(lo, hi)], dtype=np.int64)
            layer.direction = rng.choice(np.array([-1, 1], dtype=np.int8), size=fan_out)
        layers.append(layer)
    model = Model(layers=layers, input_features=sizes[0], input_bits=input_bits,
                  scale_frac_bits=frac_bits, n_classes=sizes[-1])
    artifact._validate(model)
    return model


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """The demo network, trained once: checkpoint, artifact and RTL on disk."""
    from hwgen import rtl
    from hwgen.data import load_dataset
    from hwgen.export import export_model
    from hwgen.train import save_checkpoint, train

    root = tmp_path_factory.mktemp("digits")
    model, info = train(log=None)
    save_checkpoint(model, info, root / "model.pt")
    data = load_dataset("digits")
    integer = export_model(model, info, info["input"]["bits"])
    artifact.save(integer, root / "model.hwgen")
    rtl.generate(integer, root / "rtl")
    return dict(root=root, torch_model=model, info=info, model=artifact.load(root / "model.hwgen"),
                data=data, rtl=root / "rtl")


def has_icarus():
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def hwgen(*args, cwd=None, env=None):
    """Run the hwgen command line as a user would (a real subprocess);
    ``env``: variables to set on top of this process's environment."""
    return subprocess.run([sys.executable, "-m", "hwgen.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **(env or {})})
