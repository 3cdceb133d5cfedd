"""BMT-style binarized Transformer: trains with the HBB quantizers, and each
binarized projection exports to the integer format and runs through the
golden model."""
import numpy as np
import pytest
import torch

from hwgen.core import artifact, reference
from hwgen.training.quant import mix_counts


@pytest.fixture(scope="module")
def transformer_run():
    from hwgen.training.train import train
    tm, info = train(log=None, model="transformer", dim=16, depth=1, heads=2, epochs=8, threads=1,
                     quantizer="bnn+", scale="channel")
    return tm, info


def test_transformer_trains_with_hbb_projections(transformer_run):
    tm, info = transformer_run
    assert info["float_accuracy"] >= 0.6
    projections = tm.projections()
    assert len(projections) == 8   # embed, q, k, v, o, 2 MLP, head
    for name, lin in projections.items():
        assert lin.quantizer == "bnn+"
        counts = mix_counts({1: 0.6, 2: 0.4}, lin.nbits.numel())
        assert [int((lin.nbits == b).sum()) for b in (1, 2)] == [counts[1], counts[2]], name


def test_every_binarized_projection_has_a_layernorm(transformer_run):
    from hwgen.training.nn import BinaryLinear
    tm, _ = transformer_run
    blocks = [m for m in tm.modules() if isinstance(m, BinaryLinear)]
    assert len(blocks) == 7 and all(isinstance(b.norm, torch.nn.LayerNorm) for b in blocks)


@torch.no_grad()
def test_projections_export_and_match_golden(transformer_run):
    from hwgen.training.exporter import export_projections
    tm, info = transformer_run
    ints = export_projections(tm, info, input_bits=5)
    rng = np.random.default_rng(0)
    for name, lin in tm.projections().items():
        model = artifact.loads(artifact.dumps(ints[name]))
        x = rng.integers(0, 32, size=(64, lin.in_features))
        scores = reference.infer(model, x).scores
        mus, planes = lin.binarized()
        ref = mus[0].max()
        w_hat = sum(torch.from_numpy(mu)[:, None] * p.double() for mu, p in zip(mus, planes))
        y = torch.as_tensor(x, dtype=torch.float64) @ w_hat.T + lin.bias.double()
        layer = model.layers[0]
        bound = 31 * sum(np.abs(layer.alpha[:, b] * ref / 256 - mus[b]).max() * lin.in_features
                         for b in range(len(mus))) + ref / 256
        assert np.abs(scores * ref / 256 - y.numpy()).max() <= bound, name


def test_transformer_checkpoint_exports_a_directory(tmp_path, transformer_run):
    from conftest import hwgen
    from hwgen.training.train import save_checkpoint
    save_checkpoint(*transformer_run, tmp_path / "t.pt")
    r = hwgen("export", tmp_path / "t.pt", "-o", tmp_path / "proj")
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in (tmp_path / "proj").iterdir())
    assert len(files) == 8 and "embed_linear.hwgen" in files
    emb = artifact.load(tmp_path / "proj" / "embed_linear.hwgen")
    assert emb.input_bits == 5 and emb.input_features == 8   # a row of 8 digits pixels (0..16)


@pytest.mark.slow
def test_a_projection_runs_bit_exact_in_rtl(tmp_path, transformer_run):
    """A BMT projection's matrix-vector product goes through the same RTL
    datapath as any layer: Amaranth RTL, Verilator, compared with the golden
    scores on random 5-bit input vectors."""
    from hwgen import rtl
    from hwgen.training.exporter import export_projections
    from hwgen.tools.sim import simulate
    tm, info = transformer_run
    model = export_projections(tm, info, input_bits=5)["blocks_0_attn_q_linear"]
    rtl.generate(model, tmp_path / "rtl")
    x = np.random.default_rng(1).integers(0, 32, size=(200, model.input_features))
    res = simulate(model, tmp_path / "rtl", x, work_dir=tmp_path / "sim")
    assert res["vectors"] == 200 and res["mismatches"] == 0
