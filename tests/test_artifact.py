import io
import json
import zipfile

import numpy as np
import pytest

from hwgen.core import artifact
from hwgen.errors import ArtifactError

from conftest import random_model


@pytest.fixture
def model():
    return random_model(np.random.default_rng(0), [6, 5, 4, 3])


def test_round_trip_preserves_every_field(model):
    again = artifact.loads(artifact.dumps(model))
    assert again.input_features == 6 and again.n_classes == 3 and again.input_bits == 4
    for a, b in zip(model.layers, again.layers):
        for field in ("nbits", "planes", "alpha", "threshold", "direction", "bias"):
            x, y = getattr(a, field), getattr(b, field)
            assert (x is None and y is None) or np.array_equal(x, y), field
    assert artifact.dumps(again) == artifact.dumps(model)


def test_bytes_are_deterministic(model):
    assert artifact.dumps(model) == artifact.dumps(random_model(np.random.default_rng(0), [6, 5, 4, 3]))


def _rewrite(blob, edit, compression=zipfile.ZIP_STORED):
    """Re-pack an artifact after ``edit(manifest, members)`` changed it."""
    zin = zipfile.ZipFile(io.BytesIO(blob))
    members = {n: zin.read(n) for n in zin.namelist()}
    manifest = json.loads(members["manifest.json"])
    edit(manifest, members)
    members["manifest.json"] = json.dumps(manifest).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for n, raw in members.items():
            z.writestr(n, raw)
    return out.getvalue()


def _set_array(manifest, members, layer, field, values):
    import hashlib
    desc = manifest["layers"][layer]["arrays"][field]
    raw = np.asarray(values, dtype=desc["dtype"]).tobytes()
    members[desc["file"]] = raw
    desc["sha256"] = hashlib.sha256(raw).hexdigest()


EDITS = {
    "version": (lambda m, z: m.update(version=99), "version 99 is not supported"),
    "format": (lambda m, z: m.update(format="onnx"), "format"),
    "missing key": (lambda m, z: m["layers"][0].pop("input"), "lacks the key 'input'"),
    "wrong type": (lambda m, z: m.update(input_bits="4"), "input_bits must be int"),
    "bitwidth out of range": (lambda m, z: _set_array(m, z, 0, "nbits", np.full((5, 6), 7)), "7 bits"),
    "shape mismatch": (lambda m, z: m["layers"][0]["arrays"]["nbits"].update(shape=[6, 5]), "disagrees"),
    "byte count": (lambda m, z: m["layers"][0]["arrays"]["nbits"].update(shape=[5, 7]), "bytes"),
    "edited bytes": (lambda m, z: z.update({m["layers"][1]["arrays"]["planes"]["file"]:
                                            bytes(len(z[m["layers"][1]["arrays"]["planes"]["file"]]))}),
                     "SHA-256"),
    "missing member": (lambda m, z: z.pop(m["layers"][2]["arrays"]["bias"]["file"]), "missing from the archive"),
    "bad direction": (lambda m, z: _set_array(m, z, 0, "direction", np.zeros(5)), "direction"),
    "plane bit beyond width": (lambda m, z: (_set_array(m, z, 0, "nbits", np.ones((5, 6))),
                                             _set_array(m, z, 0, "planes", np.ones((3, 5, 6)))), "beyond"),
    "layer chain": (lambda m, z: m["layers"].pop(1), "inputs but receives"),
    "dtype": (lambda m, z: m["layers"][0]["arrays"]["alpha"].update(dtype="float64"), "dtype must be 'int64'"),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_hand_edited_artifacts_fail_clearly(model, name):
    edit, needle = EDITS[name]
    blob = _rewrite(artifact.dumps(model), edit)
    with pytest.raises(ArtifactError, match=needle):
        artifact.loads(blob)


@pytest.mark.parametrize("blob", [b"", b"garbage", b"PK\x03\x04" + b"\x00" * 40])
def test_non_archives_fail_clearly(blob):
    with pytest.raises(ArtifactError, match="archive"):
        artifact.loads(blob)


def test_truncated_artifacts_fail_clearly(model):
    blob = artifact.dumps(model)
    for cut in range(0, len(blob), max(1, len(blob) // 50)):
        try:
            artifact.loads(blob[:cut])
        except ArtifactError:
            continue
        pytest.fail(f"truncation at {cut} bytes loaded without error")


def test_missing_file(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        artifact.load(tmp_path / "nope.hwgen")
