"""HBBConv2d + max-pool: training, export to conv2d artifact layers, the
integer golden model (im2col + OR-pooling) against torch's own conv2d."""
import numpy as np
import pytest
import torch

from hwgen.core import artifact, reference
from hwgen.errors import ArtifactError


def test_cnn_exports_conv_layers(cnn_run):
    model = cnn_run["model"]
    assert [l.op for l in model.layers] == ["conv2d", "conv2d", "dense", "dense"]
    c0, c1 = model.layers[:2]
    assert c0.in_shape == (1, 8, 8) and c0.kernel == (3, 3) and c0.pool == 1 and c0.out_shape == (8, 6, 6)
    assert c1.in_shape == (8, 6, 6) and c1.pool == 2 and c1.out_shape == (8, 2, 2)
    assert model.layers[2].in_features == 32
    assert model.avg_weight_bits() == pytest.approx(1.4, abs=0.01)


@torch.no_grad()
def test_conv_reference_equals_torch_conv2d_exactly(cnn_run):
    """Each conv layer of the golden model == torch.conv2d of its integer
    weights (float64 holds these integers exactly), then threshold and
    max-pool: checks window order, fan-in order and pooling bit for bit."""
    model, x = cnn_run["model"], cnn_run["data"].x_test[:64]
    golden = reference.infer(model, x)
    a = torch.as_tensor(x, dtype=torch.float64)
    for k, layer in enumerate(model.layers[:2]):
        c, h, w = layer.in_shape
        weight = torch.as_tensor(layer.weights(), dtype=torch.float64).reshape(-1, c, *layer.kernel)
        y = torch.nn.functional.conv2d(a.reshape(-1, c, h, w), weight)
        thr = torch.as_tensor(layer.threshold, dtype=torch.float64).reshape(1, -1, 1, 1)
        up = torch.as_tensor(layer.direction > 0).reshape(1, -1, 1, 1)
        fire = torch.where(up, y >= thr, y <= thr).double() * 2 - 1
        if layer.pool > 1:
            fire = torch.nn.functional.max_pool2d(fire, layer.pool)
        assert np.array_equal((fire.flatten(1) > 0).numpy(), golden.activations[k].astype(bool))
        a = fire.flatten(1)


def test_cnn_integer_accuracy_matches_float(cnn_run):
    data = cnn_run["data"]
    acc = (reference.infer(cnn_run["model"], data.x_test).pred == data.y_test).mean()
    assert acc >= 0.85
    assert abs(acc - cnn_run["info"]["float_accuracy"]) <= 0.015


def test_cnn_checkpoint_round_trip(cnn_run, tmp_path):
    from hwgen.training.train import load_checkpoint, save_checkpoint
    save_checkpoint(cnn_run["torch_model"], cnn_run["info"], tmp_path / "cnn.pt")
    tm, info = load_checkpoint(tmp_path / "cnn.pt")
    x = torch.as_tensor(cnn_run["data"].x_test[:32], dtype=torch.float32)
    cnn_run["torch_model"].eval()
    torch.testing.assert_close(tm(x), cnn_run["torch_model"](x))


@pytest.mark.parametrize("edit,needle", [
    (lambda e: e.update(in_shape=[1, 2, 8]), "larger than"),
    (lambda e: e.update(in_shape=[2, 8, 8]), "fan-in"),
    (lambda e: e.update(pool=7), "pool"),
    (lambda e: e.update(op="conv3d"), "op must be"),
    (lambda e: e.pop("kernel"), "kernel"),
])
def test_conv_manifest_edits_are_rejected(cnn_run, edit, needle):
    import io
    import json
    import zipfile
    blob = artifact.dumps(cnn_run["model"])
    zin = zipfile.ZipFile(io.BytesIO(blob))
    manifest = json.loads(zin.read("manifest.json"))
    edit(manifest["layers"][0])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zout:
        for name in zin.namelist():
            data = json.dumps(manifest).encode() if name == "manifest.json" else zin.read(name)
            zout.writestr(name, data)
    with pytest.raises(ArtifactError, match=needle):
        artifact.loads(out.getvalue())


def test_golden_model_chunks_conv_windows(cnn_run, monkeypatch):
    """Inference in chunks of images (bounded im2col memory) gives exactly
    the same scores and activations as one pass."""
    model, x = cnn_run["model"], cnn_run["data"].x_test
    whole = reference.infer(model, x)
    monkeypatch.setattr(reference, "CHUNK_ELEMENTS", 5000)   # a few images per chunk
    parts = reference.infer(model, x)
    assert np.array_equal(whole.scores, parts.scores)
    for a, b in zip(whole.activations, parts.activations):
        assert np.array_equal(a, b)
    assert len(reference.infer(model, x[:0]).pred) == 0
