"""The distillation losses: each reduces to what its paper says in the limiting cases."""
import copy

import pytest
import torch
import torch.nn.functional as F

from neurodeploy.distill.losses import LOSSES, build_loss, readout_after_each_step
from neurodeploy.errors import UserError


@pytest.fixture
def batch():
    torch.manual_seed(0)
    steps = (torch.rand(8, 6, 4) < 0.4).float().requires_grad_()
    return {"student_steps": steps, "student": steps.sum(1), "teacher": torch.randn(8, 4) * 3,
            "labels": torch.randint(0, 4, (8,))}


def test_readout_after_each_step_is_the_rescaled_running_count():
    steps = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]])
    z = readout_after_each_step(steps)
    assert torch.allclose(z[0, 0], torch.tensor([4.0, 0.0]))           # 1 spike in 1 of 4 steps
    assert torch.allclose(z[0, -1], steps.sum(1)[0])                  # full window = counts


def test_full_range_kd_reduces_to_per_step_cross_entropy(batch):
    loss = LOSSES["full_range_kd"](**batch, alpha=0.0, beta=0.0)
    z = readout_after_each_step(batch["student_steps"])
    expected = torch.stack([F.cross_entropy(z[:, t], batch["labels"]) for t in range(6)]).mean()
    assert torch.allclose(loss, expected)
    loss.backward()
    assert batch["student_steps"].grad.abs().sum() > 0


def test_full_range_kd_self_ensemble_uses_only_correct_readouts():
    # sample 0: readouts after t' = 1, 2 both predict class 0 (correct): the ensemble equals
    # them, so the self term is zero; sample 1 is never correct and is left out
    steps = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]])
    labels = torch.tensor([0, 1])
    full = LOSSES["full_range_kd"](student_steps=steps, teacher=torch.zeros(2, 2), labels=labels,
                                   alpha=0.0, beta=1.0)
    ce_only = LOSSES["full_range_kd"](student_steps=steps, teacher=torch.zeros(2, 2),
                                      labels=labels, alpha=0.0, beta=0.0)
    assert torch.allclose(full, ce_only)


def test_nld_reduces_to_logit_kd_without_noise(batch):
    kd = LOSSES["logit_kd"](**batch, temperature=2.0)
    assert torch.allclose(LOSSES["nld"](**batch, noise=0.0), kd)
    assert torch.allclose(LOSSES["nld"](**batch, variant="code", mix=1.0), kd, atol=1e-5)
    assert not torch.allclose(LOSSES["nld"](**batch, noise=0.5), kd)


def test_recipes_compose_the_new_losses(batch):
    loss = build_loss([{"name": "full_range_kd", "alpha": 0.2, "beta": 0.5, "temperature": 3},
                       {"name": "nld", "weight": 0.5, "variant": "code"}], "recipe")
    torch.manual_seed(1)                 # nld draws its noise: the same draw on both sides
    composed = loss(**batch)
    torch.manual_seed(1)
    by_hand = (LOSSES["full_range_kd"](**batch, alpha=0.2, beta=0.5, temperature=3)
               + 0.5 * LOSSES["nld"](**batch, variant="code"))
    assert composed > 0 and torch.allclose(composed, by_hand)
    with pytest.raises(UserError, match="unknown parameter"):
        build_loss([{"name": "nld", "lambda": 1}], "recipe")
    with pytest.raises(UserError, match="variant must be"):
        LOSSES["nld"](**batch, variant="other")


def _maps(seed=0):
    g = torch.Generator().manual_seed(seed)
    student = [(torch.rand(4, 3, 5, 8, 8, generator=g) < 0.3).float().requires_grad_(),
               (torch.rand(4, 3, 6, 4, 4, generator=g) < 0.3).float().requires_grad_()]
    teacher = [torch.rand(4, 7, 8, 8, generator=g), torch.rand(4, 9, 4, 4, generator=g)]
    return student, teacher


def test_attention_is_zero_for_matching_maps_and_trains_the_student():
    student, teacher = _maps()
    same = [s.mean(1).detach() for s in student]              # teacher = student's own maps
    assert LOSSES["attention"](student_maps=student, teacher_maps=same) < 1e-6
    loss = LOSSES["attention"](student_maps=student, teacher_maps=teacher)
    loss.backward()
    assert loss > 0 and student[0].grad.abs().sum() > 0


def test_samd_compares_activation_maps_after_min_max_normalisation():
    student, teacher = _maps(1)
    m_s = student[-1].detach().sum((1, 2))
    cam_same = 3 * m_s + 5                                      # same map up to scale and shift
    assert LOSSES["samd"](student_maps=student, teacher_maps=teacher,
                          teacher_cam=cam_same) < 1e-6
    other = torch.rand(4, 4, 4)
    assert LOSSES["samd"](student_maps=student, teacher_maps=teacher, teacher_cam=other) > 0


@pytest.mark.slow
def test_feature_losses_train_a_conv_student_from_a_cnn_teacher(tmp_path):
    from neurodeploy.distill.teachers import CNNTeacher
    from neurodeploy.distill.train import distill_student
    from neurodeploy.neurons import CubaParams, SpikingNet
    torch.manual_seed(0)
    x = torch.rand(32, 64).numpy()
    y = torch.randint(0, 3, (32,)).numpy()
    spikes = (torch.rand(32, 4, 64) < torch.as_tensor(x)[:, None]).to(torch.uint8).numpy()
    teacher = CNNTeacher((1, 8, 8), [4, 8], 3).eval()
    p = CubaParams(1024, 256, 64)
    student = SpikingNet((1, 8, 8), 3, [p, p, p], conv=[
        {"channels": 4, "kernel": 3, "stride": 2, "padding": 1},
        {"channels": 6, "kernel": 3, "stride": 2, "padding": 1}])
    loss = build_loss([{"name": "ce"}, {"name": "attention"}, {"name": "samd"}], "recipe")
    assert loss.needs_features
    initial = copy.deepcopy(student.state_dict())
    hist = distill_student(student, teacher, loss, train_spikes=spikes, train_x=x, train_y=y,
                           val_spikes=spikes, val_y=y, epochs=2, lr=0.01, batch_size=8, seed=0,
                           progress=False)
    assert len(hist.train_loss) == 2 and all(torch.isfinite(torch.tensor(hist.train_loss)))
    # the feature terms reach the student: the same run with CE alone trains other weights
    ce_only = SpikingNet((1, 8, 8), 3, [p, p, p], conv=[
        {"channels": 4, "kernel": 3, "stride": 2, "padding": 1},
        {"channels": 6, "kernel": 3, "stride": 2, "padding": 1}])
    ce_only.load_state_dict(initial)
    ce_hist = distill_student(ce_only, teacher, build_loss([{"name": "ce"}], "recipe"),
                              train_spikes=spikes, train_x=x, train_y=y, val_spikes=spikes,
                              val_y=y, epochs=2, lr=0.01, batch_size=8, seed=0, progress=False)
    assert all(a > b for a, b in zip(hist.train_loss, ce_hist.train_loss))
    assert any(not torch.equal(a, b) for a, b in zip(student.state_dict().values(),
                                                      ce_only.state_dict().values()))
    mlp = torch.nn.Linear(64, 3)
    with pytest.raises(UserError, match="needs an ANN conv teacher"):
        distill_student(student, mlp, loss, train_spikes=spikes, train_x=x, train_y=y,
                        val_spikes=spikes, val_y=y, epochs=1, lr=0.01, batch_size=8, seed=0,
                        progress=False)


@pytest.mark.slow
def test_feature_kd_learns_its_regressor_with_the_student(tmp_path):
    from neurodeploy.distill.teachers import CNNTeacher
    from neurodeploy.distill.train import distill_student
    from neurodeploy.neurons import CubaParams, SpikingNet
    loss = build_loss([{"name": "ce"}, {"name": "feature_kd", "weight": 0.5}], "recipe",
                      {"student_channels": [4, 6], "teacher_channels": [4, 8]})
    assert loss.needs_features and sum(p.numel() for p in loss.parameters()) == 6 * 8 + 8
    before = [p.detach().clone() for p in loss.parameters()]
    torch.manual_seed(0)
    x = torch.rand(32, 64).numpy()
    y = torch.randint(0, 3, (32,)).numpy()
    spikes = (torch.rand(32, 4, 64) < torch.as_tensor(x)[:, None]).to(torch.uint8).numpy()
    p = CubaParams(1024, 256, 64)
    student = SpikingNet((1, 8, 8), 3, [p, p, p], conv=[
        {"channels": 4, "kernel": 3, "stride": 2, "padding": 1},
        {"channels": 6, "kernel": 3, "stride": 2, "padding": 1}])
    distill_student(student, CNNTeacher((1, 8, 8), [4, 8], 3).eval(), loss, train_spikes=spikes,
                    train_x=x, train_y=y, val_spikes=spikes, val_y=y, epochs=1, lr=0.01,
                    batch_size=8, seed=0, checkpoint=tmp_path / "s.pt", progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(before, loss.parameters()))
    saved = torch.load(tmp_path / "s.pt", weights_only=True)["loss"]   # the trained regressor
    assert saved.keys() == loss.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in loss.state_dict().items())


def test_feature_kd_without_conv_networks_is_a_user_error():
    with pytest.raises(UserError, match="feature_kd needs a conv student"):
        build_loss([{"name": "feature_kd"}], "recipe")
    with pytest.raises(UserError, match="stage 5 does not exist"):
        build_loss([{"name": "feature_kd", "stage": 5}], "recipe",
                   {"student_channels": [4], "teacher_channels": [8]})


def test_spike_train_matches_a_spiking_teacher_step_by_step(batch):
    same = LOSSES["spike_train"](student_steps=batch["student_steps"],
                                 teacher_steps=batch["student_steps"].detach())
    assert same == 0
    with pytest.raises(UserError, match="needs a spiking teacher"):
        LOSSES["spike_train"](student_steps=batch["student_steps"])


@pytest.mark.slow
def test_teacher_assistant_chain_from_a_spiking_teacher(tmp_path):
    """Distilling Spikes (seed 004): SNN teacher -> SNN assistant -> SNN student, end to end."""
    from neurodeploy.checkpoint import load_checkpoint
    from neurodeploy.distill.run import distill
    from neurodeploy.recipe import recipe_from_dict
    recipe = recipe_from_dict({
        "name": "chain", "encoding": {"timesteps": 4},
        "teacher": {"spiking": True, "hidden": [64], "epochs": 3},
        "student": {"hidden": [16]},
        "distill": {"epochs": 5, "lr": 0.005, "chain": [{"hidden": [32]}],
                    "losses": [{"name": "ce"}, {"name": "logit_kd"},
                               {"name": "spike_train"}]}}, "test")
    path = distill(recipe, tmp_path, progress=False)
    student, _, ckpt = load_checkpoint(path)
    assert [s.weight.shape[0] for s in student.synapses] == [16, 10]
    assert ckpt["metrics"]["student_best_val_accuracy"] > 0.5     # chance is 0.1
    assert not list(tmp_path.glob("*_state.pt"))        # stage checkpoints cleaned up
    with pytest.raises(UserError, match="distill.chain\\[0\\]"):
        recipe_from_dict({"distill": {"chain": [{"layers": [3]}]}}, "test")


def test_layer_spikes_with_a_window_longer_than_t_compares_whole_windows():
    """window 16 over T = 10 steps compares the 10-step rates (it was an empty mean: NaN)."""
    from neurodeploy.distill.losses import layer_spike_kd
    s = torch.zeros(2, 10, 3)
    t = torch.ones(2, 10, 3)
    assert layer_spike_kd(student_layers=[s], teacher_layers=[t], window=16).item() == 1.0
