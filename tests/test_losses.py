"""Loss functions on hand-made tensors, and the pavlov method end to end on a tiny batch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmray.data.spec import ModalitySpec
from mmray.engine.training import build_method, embed_all, to_batch, train_epoch
from mmray.methods.losses import info_nce, orthogonality, reconstruction, rotation_from_skew, rotation_overlap
from mmray.methods.pavlov.card import PavlovParams
from mmray.methods.pavlov.model import Pavlov

MODALITIES = (ModalitySpec("image", "image", (1, 28, 28)), ModalitySpec("audio", "audio", (1, 16, 16)))


def assert_special_orthogonal(r: torch.Tensor, atol: float) -> None:
    k = r.shape[0]
    assert r.shape == (k, k)
    eye = torch.eye(k, dtype=r.dtype)
    torch.testing.assert_close(r @ r.T, eye, atol=atol, rtol=0)
    torch.testing.assert_close(r.T @ r, eye, atol=atol, rtol=0)
    assert torch.linalg.det(r).item() == pytest.approx(1.0, abs=atol * k)


# --- rotation_from_skew -------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3, 8, 32])
@pytest.mark.parametrize("scale", [0.01, 1.0, 3.0])
def test_rotation_from_skew_is_special_orthogonal(k, scale):
    generator = torch.Generator().manual_seed(1000 * k + int(scale * 10))
    parameter = scale * torch.randn(k, k, generator=generator, dtype=torch.float64)
    assert_special_orthogonal(rotation_from_skew(parameter), atol=1e-9)


def test_rotation_from_skew_float32_and_identity_at_symmetric_input():
    parameter = torch.randn(16, 16, generator=torch.Generator().manual_seed(0))
    assert_special_orthogonal(rotation_from_skew(parameter), atol=1e-4)
    symmetric = parameter + parameter.T  # skew part is zero -> exp(0) = I
    torch.testing.assert_close(rotation_from_skew(symmetric), torch.eye(16), atol=1e-6, rtol=0)


def test_rotation_from_skew_is_not_trivially_identity():
    parameter = torch.randn(6, 6, generator=torch.Generator().manual_seed(3))
    assert (rotation_from_skew(parameter) - torch.eye(6)).abs().max() > 0.1


def test_rotation_from_skew_gradient_reaches_parameter():
    parameter = (0.5 * torch.randn(5, 5, generator=torch.Generator().manual_seed(1))).requires_grad_()
    target = torch.randn(5, 5, generator=torch.Generator().manual_seed(2))
    (rotation_from_skew(parameter) * target).sum().backward()
    assert parameter.grad is not None
    assert torch.isfinite(parameter.grad).all()
    assert parameter.grad.abs().sum() > 0


# --- info_nce -----------------------------------------------------------------------------------------------

def test_info_nce_matched_rows_beat_shuffled_rows():
    torch.manual_seed(0)
    a = torch.randn(32, 16)
    b = a + 0.05 * torch.randn(32, 16)
    shuffled = b[torch.roll(torch.arange(32), 1)]
    matched_loss = info_nce(a, b, temperature=0.1)
    shuffled_loss = info_nce(a, shuffled, temperature=0.1)
    assert matched_loss < 0.1
    assert shuffled_loss > math.log(32)
    assert matched_loss < shuffled_loss


@pytest.mark.parametrize("n", [2, 7, 64])
def test_info_nce_equals_log_n_for_identical_constant_embeddings(n):
    a = torch.ones(n, 8)
    assert info_nce(a, a.clone(), temperature=0.3).item() == pytest.approx(math.log(n), rel=1e-5)


def test_info_nce_is_symmetric_and_scale_invariant():
    generator = torch.Generator().manual_seed(4)
    a, b = torch.randn(10, 6, generator=generator), torch.randn(10, 6, generator=generator)
    torch.testing.assert_close(info_nce(a, b, 0.2), info_nce(b, a, 0.2))
    torch.testing.assert_close(info_nce(3.0 * a, 0.5 * b, 0.2), info_nce(a, b, 0.2))  # cosine, not dot


def test_info_nce_matches_hand_computed_value():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    t = 0.5
    # logits = a @ b.T / t = [[2, 2], [0, 0]]: rows -> CE of each row is log 2; columns: [[2, 0], [2, 0]]
    row = math.log(2)
    col = 0.5 * ((-2 + math.log(math.exp(2) + 1)) + (-0 + math.log(math.exp(2) + 1)))
    assert info_nce(a, b, t).item() == pytest.approx(0.5 * (row + col), rel=1e-6)


# --- orthogonality and reconstruction -----------------------------------------------------------------

@pytest.mark.parametrize("k,d", [(1, 1), (4, 4), (8, 32), (16, 64)])
def test_orthogonality_is_zero_for_orthonormal_rows(k, d):
    generator = torch.Generator().manual_seed(k + d)
    q, _ = torch.linalg.qr(torch.randn(d, k, generator=generator, dtype=torch.float64))
    w = q.T  # (k, d) with orthonormal rows
    assert orthogonality(w).item() == pytest.approx(0.0, abs=1e-12)


def test_orthogonality_is_positive_otherwise_and_matches_formula():
    w = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # W W^T = diag(4, 1): (4-1)^2 / 2
    assert orthogonality(w).item() == pytest.approx(4.5)
    w = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # W W^T = [[1,1],[1,1]]: off-diagonals 1 each -> 2 / 2
    assert orthogonality(w).item() == pytest.approx(1.0)
    random = torch.randn(8, 16, generator=torch.Generator().manual_seed(5))
    assert orthogonality(random).item() > 0.1


def test_reconstruction_is_mean_squared_error():
    prediction = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[1.0, 0.0], [0.0, 6.0]])
    # squared errors 0, 4, 9, 4 -> mean 17 / 4
    assert reconstruction(prediction, target).item() == pytest.approx(4.25)
    assert reconstruction(target, target).item() == 0.0


# --- pavlov -------------------------------------------------------------------------------------------------

SMALL = PavlovParams(latent_dim=8, hidden_dim=16, encoder_width=4)


def tiny_batch(n: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(n, 1, 28, 28, generator=generator),
        "audio": torch.randn(n, 1, 16, 16, generator=generator),
        "label": torch.randint(0, 10, (n,), generator=generator),
    }


def test_pavlov_losses_have_all_terms_and_are_finite():
    torch.manual_seed(0)
    model = Pavlov(MODALITIES, 10, SMALL)
    losses = model.losses(tiny_batch())
    assert set(losses) == {"loss", "same", "cross", "contrastive", "orthogonality"}
    for name, value in losses.items():
        assert value.ndim == 0, name
        assert torch.isfinite(value), name
    p = SMALL
    expected = (p.w_same * losses["same"] + p.w_cross * losses["cross"]
                + p.w_contrastive * losses["contrastive"] + p.w_orthogonality * losses["orthogonality"])
    torch.testing.assert_close(losses["loss"], expected)
    torch.testing.assert_close(model(tiny_batch())["loss"], losses["loss"])  # forward == losses


def test_pavlov_embed_shapes_and_fused_is_mean_of_normalised():
    torch.manual_seed(0)
    model = Pavlov(MODALITIES, 10, SMALL).eval()
    with torch.no_grad():
        z = model.embed(tiny_batch(n=5))
    assert set(z) == {"image", "audio", "fused"}
    for value in z.values():
        assert value.shape == (5, SMALL.latent_dim)
        assert torch.isfinite(value).all()
    expected = 0.5 * (F.normalize(z["image"], dim=-1) + F.normalize(z["audio"], dim=-1))
    torch.testing.assert_close(z["fused"], expected)


def test_pavlov_embed_handles_a_single_modality():
    torch.manual_seed(0)
    model = Pavlov(MODALITIES, 10, SMALL).eval()
    batch = tiny_batch(n=4)
    with torch.no_grad():
        z = model.embed({"image": batch["image"], "label": batch["label"]})
    assert set(z) == {"image", "fused"}
    torch.testing.assert_close(z["fused"], F.normalize(z["image"], dim=-1))


def test_pavlov_rotations_are_in_so_k():
    torch.manual_seed(0)
    model = Pavlov(MODALITIES, 10, SMALL)
    rotations = model.rotations()
    assert set(rotations) == {"image", "audio"}
    for r in rotations.values():
        assert not r.requires_grad
        assert_special_orthogonal(r, atol=1e-5)


def test_pavlov_rotation_gets_gradient_from_the_loss():
    torch.manual_seed(0)
    model = Pavlov(MODALITIES, 10, SMALL)
    model.losses(tiny_batch())["loss"].backward()
    for name in ("image", "audio"):
        grad = model.skew[name].grad
        assert grad is not None and grad.abs().sum() > 0


def test_pavlov_adam_steps_reduce_loss_on_fixed_batch():
    torch.manual_seed(0)
    model = Pavlov(MODALITIES, 10, SMALL)
    batch = tiny_batch(n=16, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(25):
        loss = model.losses(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.8 * history[0], history


def test_pavlov_rejects_latent_larger_than_hidden():
    with pytest.raises(ValueError, match="latent_dim 32 must not exceed hidden_dim 16"):
        Pavlov(MODALITIES, 10, PavlovParams(latent_dim=32, hidden_dim=16))


def test_pavlov_needs_two_modalities_and_rejects_unknown_params():
    assert Pavlov.incompatibility(MODALITIES) is None
    reason = Pavlov.incompatibility(MODALITIES[:1])
    assert reason is not None and "at least 2" in reason
    with pytest.raises(Exception, match="nope"):
        PavlovParams(nope=1)


# --- the plain training helpers -----------------------------------------------------------------------------

def test_build_method_train_epoch_and_embed_all():
    torch.manual_seed(0)
    model = build_method("pavlov", MODALITIES, 10, {"latent_dim": 8, "hidden_dim": 16, "encoder_width": 4})
    assert isinstance(model, Pavlov) and model.params.latent_dim == 8
    raw = tiny_batch(n=12, seed=2)
    columns = {"image": raw["image"].reshape(12, -1), "audio": raw["audio"].reshape(12, -1),
               "label": raw["label"]}
    batch = to_batch(columns, MODALITIES)
    assert batch["image"].shape == (12, 1, 28, 28) and batch["audio"].shape == (12, 1, 16, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    means = train_epoch(model, [batch, batch], optimizer, grad_clip=1.0)
    assert set(means) == {"loss", "same", "cross", "contrastive", "orthogonality"}
    assert all(math.isfinite(v) for v in means.values())
    with pytest.raises(RuntimeError, match="no batch"):
        train_epoch(model, [], optimizer)
    embeddings, labels = embed_all(model, [batch, batch], limit=20)
    assert embeddings["fused"].shape == (20, 8) and labels.shape == (20,)
    assert (labels[:12] == raw["label"].numpy()).all()


def test_rotation_overlap_is_the_pavlov_seeds_pairwise_trace_term():
    identity, quarter_turn = torch.eye(2), torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    assert float(rotation_overlap([identity, quarter_turn])) == 0.0  # orthogonal as matrices: apart
    assert float(rotation_overlap([identity, identity])) == 4.0  # trace(I)^2 = k^2: the same rotation
    # the mean over pairs: (I, I) 4, (I, Q) 0, (I, Q) 0
    assert float(rotation_overlap([identity, identity, quarter_turn])) == pytest.approx(4 / 3)
    assert float(rotation_overlap([identity])) == 0.0


def test_pavlov_adds_the_seeds_rotation_term_only_when_weighted_and_it_reaches_the_rotations():
    modalities = (ModalitySpec("image", "image", (1, 8, 8)), ModalitySpec("audio", "audio", (1, 8, 8)))
    batch = {"image": torch.rand(4, 1, 8, 8), "audio": torch.randn(4, 1, 8, 8), "label": torch.arange(4)}
    small = {"encoder_width": 4, "hidden_dim": 8, "latent_dim": 4}
    assert "rotation_orthogonality" not in build_method("pavlov", modalities, 4, small).losses(batch)
    torch.manual_seed(0)
    model = build_method("pavlov", modalities, 4, {**small, "w_rotation_orthogonality": 0.01})
    out = model.losses(batch)
    # near the identity at initialisation, each rotation overlaps the other almost fully: trace ~ k = 4
    assert 15 < float(out["rotation_orthogonality"]) <= 16
    out["rotation_orthogonality"].backward()
    assert model.skew["image"].grad is not None and model.skew["image"].grad.abs().sum() > 0
