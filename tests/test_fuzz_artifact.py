"""Hostile artifacts: thousands of mutated and truncated artifacts, each of
which must either load as a valid model (that the golden reference can run)
or fail with one clear ArtifactError -- never another exception, never a
hang. Mutations are seeded, so a failure names a mutant that reproduces.
"""
import hashlib
import io
import json
import math
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


# --------------------------------------------------------------------------- hostile archives

INT64_EXTREMES = [np.iinfo(np.int64).min, np.iinfo(np.int64).min + 1, np.iinfo(np.int64).max, -(2 ** 40),
                  2 ** 40]
N_HOSTILE = 180


def _zip(entries):
    """An archive of ``(name, bytes or (zeros, n), compress)``; zeros are
    streamed into the member, so a 1 GB bomb never sits in memory."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compresslevel=1) as z:
        for name, data, compress in entries:
            kind = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            if isinstance(data, tuple):
                info = zipfile.ZipInfo(name)
                info.compress_type = kind
                with z.open(info, "w", force_zip64=True) as f:
                    chunk, left = bytes(1 << 20), data[1]
                    while left:
                        f.write(chunk[:min(left, len(chunk))])
                        left -= min(left, len(chunk))
            else:
                info = zipfile.ZipInfo(name)
                info.compress_type = kind
                z.writestr(info, data)
    return out.getvalue()


def hostile_mutants(base, n=N_HOSTILE, seed=0):
    """``(blob, what)``: int64 extremes in every int64 array, shapes whose
    products wrap int64, zip bombs (members and manifests expanding 16 MB
    to 1 GB from about a megabyte), duplicate members, members named with
    ``..`` and absolute paths."""
    import warnings
    rng = np.random.default_rng(seed)
    manifest, members = unpack(base)
    descs = [(i, f, d) for i, layer in enumerate(manifest["layers"]) for f, d in layer["arrays"].items()]
    for k in range(n):
        m, mem = json.loads(json.dumps(manifest)), dict(members)
        i, field, desc = descs[rng.integers(len(descs))]
        desc = m["layers"][i]["arrays"][field]
        kind = k % 6
        if kind == 0 and desc["dtype"] == "int64":
            values = np.frombuffer(mem[desc["file"]], dtype="<i8").copy()
            where = rng.integers(values.size) if rng.random() < 0.5 else slice(None)
            values[where] = INT64_EXTREMES[rng.integers(len(INT64_EXTREMES))]
            mem[desc["file"]] = values.tobytes()
            desc["sha256"] = hashlib.sha256(values.tobytes()).hexdigest()
            yield pack(m, mem), f"hostile: {desc['file']}[{where}] = int64 extreme"
        elif kind == 1:
            desc["shape"] = [[2 ** 24, 2 ** 24, 2 ** 16], [2 ** 24] * 4, [0, 2 ** 24], [2 ** 63, 2],
                             [-1, -1]][rng.integers(5)]
            yield pack(m, mem), f"hostile: {desc['file']} shape {desc['shape']}"
        elif kind == 2:
            size = (1 << 30) if k < 12 else int(rng.choice([1 << 24, 1 << 26, 1 << 28]))
            desc["dtype"] = {"nbits": "uint8", "planes": "uint8", "alpha": "int64", "threshold": "int64",
                             "direction": "int8", "bias": "int64"}[field]
            item = np.dtype(desc["dtype"]).itemsize
            desc["shape"] = [size // item // (1 << 20), 1 << 20]
            entries = [("manifest.json", json.dumps(m).encode(), False)] + \
                [(name, (("zeros", math.prod(desc["shape"]) * item) if name == desc["file"] else raw), True)
                 for name, raw in mem.items()]
            yield _zip(entries), f"hostile: zip bomb, {desc['file']} expands to {size:,} bytes"
        elif kind == 3:
            entries = [("manifest.json", (("zeros", int(rng.choice([1 << 24, 1 << 28])))), True)] + \
                [(name, raw, False) for name, raw in mem.items()]
            yield _zip(entries), "hostile: manifest.json is a zip bomb"
        elif kind == 4:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")       # zipfile warns about the duplicate name
                other = bytes(len(mem[desc["file"]]))
                dup = "manifest.json" if rng.random() < 0.3 else desc["file"]
                entries = [("manifest.json", json.dumps(m).encode(), False)] + \
                    [(name, raw, False) for name, raw in mem.items()] + \
                    [(dup, other if dup != "manifest.json" else b"{}", False)]
                yield _zip(entries), f"hostile: {dup} twice"
        else:
            name = ["../" + desc["file"], "/etc/" + desc["file"], "a/../../" + desc["file"]][rng.integers(3)]
            mem[name] = mem.pop(desc["file"])
            desc["file"] = name
            yield pack(m, mem), f"hostile: member named {name!r}"


def test_hostile_archives_fail_clearly_or_load_the_same_model_within_512_mb(tmp_path):
    """Each hostile mutant is refused with one clear line, or loads as a model
    that predicts exactly what the original does; loading all of them (zip
    bombs of up to 1 GB from a file of about a megabyte among them) keeps
    the process's peak memory under 512 MB."""
    for base in sorted(BASES):
        blob = artifact.dumps(BASES[base]())
        (tmp_path / f"{base}.hwgen").write_bytes(blob)
        for k, (mutant, what) in enumerate(hostile_mutants(blob, seed=len(base))):
            (tmp_path / f"{base}-{k:03d}.hwgen").write_bytes(mutant)
            (tmp_path / f"{base}-{k:03d}.txt").write_text(what)
    script = (
        "import json, sys\nfrom pathlib import Path\nimport numpy as np\n"
        "from hwgen.core import artifact, reference\nfrom hwgen.errors import ArtifactError\n"
        "d = Path(sys.argv[1]); out = {}\n"
        "for base in ('conv', 'dense'):\n"
        "    orig = artifact.load(d / f'{base}.hwgen')\n"
        "    x = np.random.default_rng(0).integers(0, 2 ** orig.input_bits, (16, orig.input_features))\n"
        "    want = reference.infer(orig, x).scores.tolist()\n"
        "    for p in sorted(d.glob(f'{base}-*.hwgen')):\n"
        "        size = p.stat().st_size\n"
        "        try:\n"
        "            m = artifact.load(p)\n"
        "        except ArtifactError as exc:\n"
        "            out[p.name] = ['rejected', str(exc), size]\n"
        "            continue\n"
        "        same = reference.infer(m, x).scores.tolist() == want\n"
        "        out[p.name] = ['loaded', same, size]\n"
        # VmHWM: this process's own peak (ru_maxrss would carry over the parent's from before exec)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "out['peak_mb'] = int(hwm.split()[1]) / 1024\n"
        "print(json.dumps(out))\n")
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    out = json.loads(proc.stdout)
    peak = out.pop("peak_mb")
    kinds = {}
    for name, (verdict, detail, size) in out.items():
        what = (tmp_path / name.replace(".hwgen", ".txt")).read_text()
        kind = what.split(",")[0].split(" = ")[0].split(" shape ")[0]
        kinds.setdefault(verdict, set()).add(what.split(":")[1].split()[0] if verdict else kind)
        if verdict == "rejected":
            assert detail and "\n" not in detail and "Traceback" not in detail, (what, detail)
        else:
            assert detail is True, f"{what}: loaded, but predicts differently"
        if "zip bomb" in what:
            assert verdict == "rejected" and size < (2 << 20), (what, size)
    assert len(out) == 2 * N_HOSTILE
    assert peak < 512, f"peak memory {peak:.0f} MB"
    assert sum(v == "rejected" for v, _, _ in out.values()) > N_HOSTILE
