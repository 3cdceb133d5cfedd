import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from hwgen.core import artifact
from hwgen.core.artifact import Layer, Model


# Synthesis results are cached by content hash; the tests use a cache of their
# own (inherited by the CLI subprocesses), empty at the start of each run.
os.environ["HWGEN_CACHE"] = tempfile.mkdtemp(prefix="hwgen-test-cache-")


def _random_layer(rng, name, fan_in, fan_out, first, last, input_bits, max_bits, frac_bits, prune, **conv):
    nbits = rng.integers(1, max_bits + 1, size=(fan_out, fan_in)).astype(np.uint8)
    nbits[rng.random((fan_out, fan_in)) < prune] = 0
    b = np.arange(1, max_bits + 1).reshape(-1, 1, 1)
    planes = (rng.integers(0, 2, size=(max_bits, fan_out, fan_in)) * (nbits[None] >= b)).astype(np.uint8)
    alpha = np.tile(rng.integers(1, 2 ** frac_bits + 1, size=max_bits), (fan_out, 1)).astype(np.int64)
    layer = Layer(name=name, input="uint" if first else "binary", input_bits=input_bits if first else 1,
                  output="scores" if last else "threshold", nbits=nbits, planes=planes, alpha=alpha, **conv)
    if last:
        layer.bias = rng.integers(-50, 51, size=fan_out).astype(np.int64)
    else:
        lo, hi = layer.bounds()
        # thresholds anywhere in (and just outside) the reachable range
        layer.threshold = np.array([rng.integers(l - 1, h + 2) for l, h in zip(lo, hi)], dtype=np.int64)
        layer.direction = rng.choice(np.array([-1, 1], dtype=np.int8), size=fan_out)
    return layer


def random_model(rng, sizes, input_bits=4, max_bits=3, frac_bits=8, prune=0.1):
    """A random but valid integer model: layer widths ``sizes`` (inputs first)."""
    layers = [_random_layer(rng, f"fc{i}", fan_in, fan_out, i == 0, i == len(sizes) - 2, input_bits, max_bits,
                            frac_bits, prune) for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:]))]
    model = Model(layers=layers, input_features=sizes[0], input_bits=input_bits,
                  scale_frac_bits=frac_bits, n_classes=sizes[-1])
    artifact._validate(model)
    return model


def random_cnn(rng, in_shape, convs, dense, input_bits=4, max_bits=3, frac_bits=8, prune=0.1):
    """A random valid CNN: ``convs`` is ``[(channels, (kh, kw), pool), ...]``
    over a ``[C, H, W]`` input, then dense layers of widths ``dense`` (the
    last one: the classes)."""
    layers, shape = [], tuple(in_shape)
    for k, (channels, kernel, pool) in enumerate(convs):
        layer = _random_layer(rng, f"conv{k}", shape[0] * kernel[0] * kernel[1], channels, k == 0, False,
                              input_bits, max_bits, frac_bits, prune, op="conv2d", in_shape=shape,
                              kernel=tuple(kernel), pool=pool)
        layers.append(layer)
        shape = layer.out_shape
    sizes = [int(np.prod(shape))] + list(dense)
    layers += [_random_layer(rng, f"fc{i}", fan_in, fan_out, False, i == len(dense) - 1, input_bits, max_bits,
                             frac_bits, prune) for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:]))]
    model = Model(layers=layers, input_features=int(np.prod(in_shape)), input_bits=input_bits,
                  scale_frac_bits=frac_bits, n_classes=dense[-1])
    artifact._validate(model)
    return model


def edge_inputs(rng, n, fan_in, hi):
    """``n`` random rows in ``0..hi`` after an all-zero and an all-``hi`` row."""
    x = rng.integers(0, hi + 1, size=(n, fan_in))
    return np.vstack([np.zeros((1, fan_in), np.int64), np.full((1, fan_in), hi), x])


def tie_thresholds(model, x, rng):
    """Move every threshold onto the pre-activation ``Y`` that one of the rows
    of ``x`` actually reaches, so ``Y == threshold`` (where >= and > part)
    happens in the test. Dense layers with 1-bit outputs; returns ``model``."""
    from hwgen.core import reference
    a = np.asarray(x, dtype=np.int64)
    for layer in model.layers[:-1]:
        y = reference._accumulate(layer, a)                            # [N, O]
        layer.threshold = y[rng.integers(0, len(y), size=layer.out_features),
                            np.arange(layer.out_features)].astype(np.int64)
        up = layer.direction.reshape(1, -1) > 0
        a = np.where(up, y >= layer.threshold, y <= layer.threshold).astype(np.int64) * 2 - 1
    artifact._validate(model)
    return model


def stream_through(dut, x, n_classes, ready=lambda: 1, max_cycles=100_000):
    """Stream int rows ``x`` through a network component (``i``/``o`` streams;
    a CNN takes each row's pixels) in Amaranth's simulator, the sink taking
    an output when ``ready()`` says so. Returns ``[(cycle, label, scores)]``
    in arrival order; ``cycle`` counts clock edges from the first one, at
    which the first input is offered."""
    from amaranth.sim import Simulator
    from hwgen.rtl import input_words
    words = [w for row in input_words(dut._model, x) for w in row]
    got = []

    async def bench(ctx):
        sent = 0
        for cycle in range(max_cycles):
            if len(got) == len(x):
                break
            ctx.set(dut.i.valid, sent < len(words))
            if sent < len(words):
                ctx.set(dut.i.payload.as_value(), words[sent])
            ctx.set(dut.o.ready, int(ready()))
            _, _, in_ready, out_valid, out_ready, label, scores = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload.label, dut.o.payload.scores)
            if out_valid and out_ready:
                got.append((cycle, label, [scores[k] for k in range(n_classes)]))
            if sent < len(words) and in_ready:
                sent += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.fixture(scope="session")
def cnn_run():
    """A small digits CNN (conv c8 -> conv c8 -> 2x2 pool -> 32 -> 10), 1.4 bits, exported."""
    from hwgen.training.data import load_dataset
    from hwgen.training.exporter import export_model
    from hwgen.training.train import train
    tm, info = train(log=None, model="cnn", conv="c8,c8,p", hidden=[32], epochs=12, threads=1,
                     scale="channel")
    model = artifact.loads(artifact.dumps(export_model(tm, info, info["input"]["bits"])))
    return dict(torch_model=tm, info=info, model=model, data=load_dataset("digits"))


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """The demo network, trained once: checkpoint, artifact and RTL on disk."""
    from hwgen import rtl
    from hwgen.training.data import load_dataset
    from hwgen.training.exporter import export_model
    from hwgen.training.train import save_checkpoint, train

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


def assert_clean_error(proc, needle, code=2):
    """One ``hwgen: error:`` line naming ``needle``, last, no traceback, and
    exit code ``code`` (2: usage or bad input, 1: verification failed, 3:
    not installed)."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("hwgen: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    assert needle in errors[0], proc.stderr
