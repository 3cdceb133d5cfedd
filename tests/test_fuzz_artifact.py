"""Hostile artifacts: thousands of mutated and truncated artifacts, each of
which must either load as a valid model (that the golden reference can run)
or fail with one clear ArtifactError -- never another exception, never a
hang. Mutations are seeded, so a failure names a mutant that reproduces.
"""
import hashlib
import io
import json
import signal
import zipfile
from contextlib import contextmanager

import numpy as np
import pytest

from hwgen.core import artifact, reference
from hwgen.core.artifact import Layer, Model
from hwgen.errors import ArtifactError

from conftest import hwgen, random_model

N_BYTE, N_MANIFEST, N_ARRAY = 400, 600, 300   # 1,300 mutants per base artifact


def conv_model(rng):
    """conv2d (1x5x5 map, 2x2 kernel, 2x2 pool) -> dense: exercises the v2 fields."""
    nbits = rng.integers(0, 4, size=(3, 4)).astype(np.uint8)
    planes = (rng.integers(0, 2, size=(3, 3, 4)) * (nbits[None] >= np.arange(1, 4).reshape(-1, 1, 1)))
    conv = Layer(name="conv0", input="uint", input_bits=4, output="threshold", op="conv2d",
                 in_shape=(1, 5, 5), kernel=(2, 2), pool=2, nbits=nbits, planes=planes.astype(np.uint8),
                 alpha=rng.integers(1, 256, size=(3, 3)).astype(np.int64),
                 threshold=rng.integers(-100, 100, size=3).astype(np.int64),
                 direction=np.array([1, -1, 1], dtype=np.int8))
    dense = random_model(rng, [12, 3], input_bits=1).layers[0]
    dense.input = "binary"
    model = Model(layers=[conv, dense], input_features=25, input_bits=4, scale_frac_bits=8, n_classes=3)
    artifact._validate(model)
    return model


BASES = {
    "dense": lambda: random_model(np.random.default_rng(1), [9, 6, 5, 3]),
    "conv": lambda: conv_model(np.random.default_rng(2)),
}

# values a hand edit (or a hostile file) may put anywhere in the manifest
ODD_VALUES = [None, True, False, 0, 1, -1, 3, 4, 5, 17, 2 ** 24, 2 ** 31, 2 ** 63, -(2 ** 63), 2 ** 80,
              0.5, -2.0, 1e308, float("nan"), float("inf"), "", "x", "../../etc/passwd", "uint", "binary",
              "threshold", "scores", "dense", "conv2d", "int64", "uint8", [], [0], [1, 1, 1], [2 ** 24] * 3,
              {}, {"file": "manifest.json"}]


@contextmanager
def deadline(seconds, what):
    """Fail (instead of hanging the suite) if the body runs for ``seconds``."""
    def expire(signum, frame):
        raise TimeoutError(f"{what}: still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def unpack(blob):
    z = zipfile.ZipFile(io.BytesIO(blob))
    members = {n: z.read(n) for n in z.namelist()}
    return json.loads(members.pop("manifest.json")), members


def pack(manifest, members):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("manifest.json", json.dumps(manifest))
        for name, raw in members.items():
            z.writestr(name, raw)
    return out.getvalue()


def mutate_bytes(blob, rng):
    """Flip, overwrite, insert, delete or truncate raw bytes of the archive."""
    b = bytearray(blob)
    kind = rng.integers(5)
    if kind == 0:
        for _ in range(rng.integers(1, 9)):
            b[rng.integers(len(b))] ^= 1 << rng.integers(8)
        return bytes(b), "bit flips"
    if kind == 1:
        i = rng.integers(len(b))
        b[i:i + 4] = rng.integers(0, 256, size=4, dtype=np.uint8).tobytes()
        return bytes(b), f"4 random bytes at {i}"
    if kind == 2:
        i = rng.integers(len(b))
        return bytes(b[:i] + rng.integers(0, 256, size=rng.integers(1, 64), dtype=np.uint8).tobytes()
                     + b[i:]), f"bytes inserted at {i}"
    if kind == 3:
        i = rng.integers(len(b))
        return bytes(b[:i] + b[i + rng.integers(1, 64):]), f"bytes deleted at {i}"
    n = int(rng.integers(len(b)))
    return bytes(b[:n]), f"truncated to {n} bytes"


def _paths(node, prefix=()):
    """Every (path, value) in a JSON tree."""
    yield prefix, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, prefix + (key,))


def mutate_manifest(blob, rng):
    """Replace, delete or duplicate one node of manifest.json (archive otherwise intact)."""
    manifest, members = unpack(blob)
    paths = [p for p, _ in _paths(manifest) if p]
    path = paths[rng.integers(len(paths))]
    parent = manifest
    for key in path[:-1]:
        parent = parent[key]
    key, kind = path[-1], rng.integers(4)
    if kind == 0 and isinstance(parent, dict):
        del parent[key]
        what = "deleted"
    elif kind == 1 and isinstance(parent, list):
        parent.append(parent[key])
        what = "duplicated"
    elif kind == 2 and isinstance(parent[key], int) and not isinstance(parent[key], bool):
        parent[key] += int(rng.choice([-1, 1, -2, 2]))
        what = "nudged"
    else:
        parent[key] = ODD_VALUES[rng.integers(len(ODD_VALUES))]
        what = f"set to {parent[key]!r}"
    return pack(manifest, members), f"manifest {'/'.join(map(str, path))} {what}"


def mutate_array(blob, rng):
    """Change the contents of one array *and re-sign it*, so only validation can object."""
    manifest, members = unpack(blob)
    descs = [d for layer in manifest["layers"] for d in layer["arrays"].values()]
    desc = descs[rng.integers(len(descs))]
    dtype = np.dtype(desc["dtype"]).newbyteorder("<")
    values = np.frombuffer(members[desc["file"]], dtype=dtype).copy()
    kind = rng.integers(4)
    if kind == 0 and values.size:
        info = np.iinfo(dtype)
        i = rng.integers(values.size)
        values[i] = rng.choice([info.min, info.max, -1 if info.min < 0 else 255, 2, 3, 4, 7])
        raw, what = values.tobytes(), f"element {i} set to {values[i]}"
    elif kind == 1:
        raw, what = values.tobytes()[:-dtype.itemsize] if values.size else b"\0", "one element short"
    elif kind == 2:
        raw, what = values.tobytes() + values.tobytes()[:dtype.itemsize], "one element long"
    else:
        raw = rng.integers(0, 256, size=values.nbytes, dtype=np.uint8).tobytes()
        what = "random contents"
    members[desc["file"]] = raw
    desc["sha256"] = hashlib.sha256(raw).hexdigest()
    return pack(manifest, members), f"array {desc['file']} {what}"


def mutants(base, n_byte=N_BYTE, n_manifest=N_MANIFEST, n_array=N_ARRAY, seed=0):
    rng = np.random.default_rng(seed)
    for n, mutate in ((n_byte, mutate_bytes), (n_manifest, mutate_manifest), (n_array, mutate_array)):
        for _ in range(n):
            yield mutate(base, rng)


def assert_valid(model, what):
    """What "a valid model" means, checked independently of the loader's own
    validation: every invariant the golden model and the RTL rely on."""
    fan_in, act_bits = model.input_features, model.input_bits
    for i, layer in enumerate(model.layers):
        last = i == len(model.layers) - 1
        assert layer.input == ("uint" if i == 0 else "binary") and layer.input_bits == act_bits, what
        assert layer.output == ("scores" if last else "threshold"), what
        assert layer.in_size == fan_in and 1 <= layer.max_bits <= 3, what
        assert layer.nbits.shape == (layer.out_features, layer.in_features), what
        assert layer.planes.shape == (layer.max_bits, *layer.nbits.shape), what
        assert layer.alpha.shape == (layer.out_features, layer.max_bits), what
        assert 0 <= layer.nbits.min() and layer.nbits.max() <= layer.max_bits, what
        assert set(np.unique(layer.planes)) <= {0, 1}, what
        for b in range(layer.max_bits):  # no sign bit beyond a weight's bitwidth
            assert not (layer.planes[b].astype(bool) & (layer.nbits <= b)).any(), what
        assert (layer.alpha >= 0).all(), what
        if last:
            assert layer.bias.shape == (layer.out_features,), what
        else:
            assert set(np.unique(layer.direction)) <= {-1, 1}, what
            assert layer.threshold.shape[0] == layer.out_features, what
            act_bits = layer.output_bits
        fan_in = layer.out_size
    assert fan_in == model.n_classes >= 2, what


def check_loads(blob, what):
    """The contract: a valid model the golden reference runs, or one ArtifactError."""
    try:
        with deadline(20, what):
            model = artifact.loads(blob)
    except ArtifactError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and "Traceback" not in msg, f"{what}: unclear error {msg!r}"
        return "rejected"
    assert_valid(model, what)
    lo, hi = model.layers[0].input_range
    x = np.random.default_rng(0).integers(lo, hi + 1, size=(4, model.input_features))
    with deadline(20, what):
        out = reference.infer(model, np.vstack([x, np.full((1, model.input_features), hi)]))
    assert out.scores.shape == (5, model.n_classes), what
    assert artifact.loads(artifact.dumps(model)) is not None, what
    return "loaded"


@pytest.mark.parametrize("base", sorted(BASES))
def test_every_mutant_loads_validly_or_fails_clearly(base):
    blob = artifact.dumps(BASES[base]())
    outcomes = {"loaded": 0, "rejected": 0}
    for blob_m, what in mutants(blob):
        outcomes[check_loads(blob_m, f"{base}: {what}")] += 1
    assert sum(outcomes.values()) == N_BYTE + N_MANIFEST + N_ARRAY
    # the mutations do reach validation, and harmless ones (meta, names) are accepted
    assert outcomes["rejected"] > 0.7 * sum(outcomes.values()) and outcomes["loaded"] > 0, outcomes


def test_mutation_operators_hit_every_layer_of_the_format():
    """The fuzzer is only as good as its reach: errors from the zip layer,
    the manifest checks and the semantic validation must all occur."""
    blob = artifact.dumps(BASES["conv"]())
    messages = []
    for blob_m, _ in mutants(blob, 150, 300, 150, seed=1):
        try:
            artifact.loads(blob_m)
        except ArtifactError as exc:
            messages.append(str(exc))
    joined = "\n".join(messages)
    for fragment in ("archive", "must be", "SHA-256", "bits", "shape", "lacks the key"):
        assert fragment in joined, fragment


def test_command_line_on_mutants_exits_cleanly(tmp_path):
    """As users meet it: `hwgen rtl` on hostile files prints one error line and
    exits non-zero (2, the command line's error status)."""
    blob = artifact.dumps(BASES["dense"]())
    seen = 0
    for k, (blob_m, what) in enumerate(mutants(blob, 4, 8, 4, seed=7)):
        path = tmp_path / f"m{k}.hwgen"
        path.write_bytes(blob_m)
        proc = hwgen("rtl", path, "-o", tmp_path / f"rtl{k}")
        assert "Traceback" not in proc.stderr, f"{what}: {proc.stderr}"
        if proc.returncode:
            seen += 1
            assert proc.returncode == 2 and proc.stderr.startswith("hwgen: error:"), f"{what}: {proc.stderr}"
            assert len(proc.stderr.strip().splitlines()) == 1, f"{what}: {proc.stderr}"
    assert seen >= 8
