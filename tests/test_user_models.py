"""A user's own PyTorch models, trained in a plain loop on arrays the test
loads itself, through the public API: hwgen.export -> Artifact.predict ->
hwgen.generate_rtl -> hwgen.simulate (Verilator, 0 mismatches)."""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import hwgen

MIX = {1: 0.6, 2: 0.4}


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits with the test's own split: pixels 0..16 (5 bits)."""
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x.astype(np.int64), y, test_size=0.25, random_state=1,
                                              stratify=y)
    return x_tr, x_te, y_tr, y_te


def train_plain(model, x, y, epochs=15, lr=0.01, batch=64, shape=None, seed=0):
    """The plainest PyTorch loop: Adam, cross-entropy, shuffled batches."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    xt = torch.tensor(x, dtype=torch.float32)
    if shape is not None:
        xt = xt.reshape(len(x), *shape)
    yt = torch.tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt)).split(batch):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model


def torch_argmax(model, x, shape=None):
    model.eval()
    xt = torch.tensor(x, dtype=torch.float32)
    with torch.no_grad():
        return model(xt if shape is None else xt.reshape(len(x), *shape)).argmax(1).numpy()


def sequential_mlp(bias=False):
    return nn.Sequential(
        hwgen.HBBLinear(64, 32, bias=bias, mix=MIX), nn.BatchNorm1d(32), hwgen.SignActivation(),
        nn.Dropout(0.1),
        hwgen.HBBLinear(32, 32, bias=bias, mix=MIX), nn.BatchNorm1d(32), hwgen.SignActivation(),
        hwgen.HBBLinear(32, 10, bias=True, mix=MIX))


class SmallCNN(nn.Module):
    """A user-written CNN: conv -> BN -> sign -> 2x2 max-pool -> flatten -> dense."""

    def __init__(self):
        super().__init__()
        self.conv = hwgen.HBBConv2d(1, 8, 3, mix=MIX, scale="channel")
        self.bn = nn.BatchNorm2d(8)
        self.act = hwgen.SignActivation()
        self.pool = nn.MaxPool2d(2)
        self.fc = hwgen.HBBLinear(8 * 3 * 3, 32, bias=True, mix=MIX)
        self.bn2 = nn.BatchNorm1d(32)
        self.out = hwgen.HBBLinear(32, 10, bias=True, mix=MIX)

    def forward(self, x):
        x = self.pool(self.act(self.bn(self.conv(x))))
        x = torch.flatten(x, 1)
        x = self.act(self.bn2(self.fc(x)))
        return self.out(x)


CASES = {
    "sequential-mlp": (lambda: sequential_mlp(False), None),
    "mlp-with-hidden-biases": (lambda: sequential_mlp(True), None),
    "custom-cnn": (SmallCNN, (1, 8, 8)),
}


@pytest.fixture(scope="module")
def exported(digits):
    x_tr, x_te, y_tr, y_te = digits
    out = {}
    for name, (build, shape) in CASES.items():
        torch.manual_seed(0)
        model = train_plain(build(), x_tr, y_tr, shape=shape)
        art = hwgen.export(model, input_bits=5, input_shape=shape)
        out[name] = (model, art, shape)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_predict_agrees_with_the_torch_model(exported, digits, name):
    """The integer golden model's argmax agrees with the trained torch
    model's eval-mode argmax on >= 99 % of the test split, and is accurate."""
    model, art, shape = exported[name]
    _, x_te, _, y_te = digits
    scores = art.predict(x_te)
    assert scores.dtype == np.int64 and scores.shape == (len(x_te), 10)
    agree = (scores.argmax(1) == torch_argmax(model, x_te, shape)).mean()
    assert agree >= 0.99, f"{name}: integer and torch argmax agree on {agree:.4f}"
    assert (scores.argmax(1) == y_te).mean() > 0.8


def test_hidden_biases_are_folded_not_dropped(exported, digits):
    """The biased MLP's hidden biases are non-zero and change the thresholds:
    exporting the same model with them zeroed gives other activations."""
    model, art, _ = exported["mlp-with-hidden-biases"]
    biases = [m.bias for m in model if isinstance(m, hwgen.HBBLinear)][:2]
    assert all(b.abs().max() > 0.01 for b in biases)
    saved = [b.detach().clone() for b in biases]
    with torch.no_grad():
        for b in biases:
            b.zero_()
    try:
        dropped = hwgen.export(model, input_bits=5)
    finally:
        with torch.no_grad():
            for b, s in zip(biases, saved):
                b.copy_(s)
    assert not np.array_equal(dropped.layers[0].threshold, art.layers[0].threshold)
    _, x_te, _, _ = digits
    assert (dropped.predict(x_te).argmax(1) != art.predict(x_te).argmax(1)).any()


def test_the_artifact_round_trips_through_a_file(exported, tmp_path):
    _, art, _ = exported["custom-cnn"]
    art.save(tmp_path / "cnn.hwgen")
    again = hwgen.load(tmp_path / "cnn.hwgen")
    assert [l.op for l in again.layers] == ["conv2d", "dense", "dense"]
    assert again.layers[0].in_shape == (1, 8, 8) and again.layers[0].pool == 2
    assert (tmp_path / "cnn.hwgen").read_bytes() == hwgen.core.artifact.dumps(again)


def test_export_freezes_the_masks_and_keeps_the_training_mode(digits):
    """A model straight out of a training loop (still in train mode, masks
    from the last step's weights) exports on its final weights and is
    left in train mode."""
    x_tr, _, y_tr, _ = digits
    torch.manual_seed(0)
    model = train_plain(sequential_mlp(), x_tr[:256], y_tr[:256], epochs=2)
    assert model.training
    art = hwgen.export(model, input_bits=5)
    assert model.training and all(m.training for m in model.modules())
    first = model[0]
    assert np.array_equal(art.layers[0].nbits, first.nbits.numpy())
    assert abs(art.avg_weight_bits() - 1.4) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_user_model_rtl_is_bit_exact_in_verilator(exported, digits, name, tmp_path):
    """hwgen.simulate: 0 mismatches on the whole test split."""
    _, art, _ = exported[name]
    _, x_te, _, y_te = digits
    manifest = hwgen.generate_rtl(art, tmp_path / "rtl")
    assert manifest.design == hwgen.Design(datapaths={l.name: "planes" for l in art.layers})
    res = hwgen.simulate(art, tmp_path / "rtl", x_te, labels=y_te)
    assert res.vectors == len(x_te)
    assert res.mismatches == 0 and res.ok, res.runs["verilator"]["first_mismatches"]
    assert res.accuracy == (art.predict(x_te).argmax(1) == y_te).mean()
