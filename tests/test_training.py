"""Training that pays: teacher augmentation and schedules, fewer exact-mode validations, a
student initialisation that uses the 8-bit grid, per-layer thresholds."""
import numpy as np
import pytest
import torch

from neurodeploy.distill.losses import build_loss
from neurodeploy.distill.teachers import CNNTeacher
from neurodeploy.distill.train import augment_images, distill_student, train_teacher
from neurodeploy.errors import UserError
from neurodeploy.neurons import CubaParams, SpikingNet
from neurodeploy.neurons.student import zero_weight_fraction
from neurodeploy.checkpoint import _student
from neurodeploy.distill.run import distill
from neurodeploy.recipe import recipe_from_dict


def test_augmentation_shifts_and_flips_each_image_reproducibly():
    img = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 25) + 1
    gen = lambda: torch.Generator().manual_seed(3)      # noqa: E731
    a = augment_images(img, (1, 5, 5), gen(), pad=0, flip=True)
    flipped = img.reshape(2, 5, 5).flip(-1).reshape(2, 25)
    assert all(torch.equal(a[i], img[i]) or torch.equal(a[i], flipped[i]) for i in range(2))
    b = augment_images(img.repeat(50, 1), (1, 5, 5), gen(), pad=1, flip=False)
    assert torch.equal(b, augment_images(img.repeat(50, 1), (1, 5, 5), gen(), pad=1, flip=False))
    grid = b.reshape(100, 5, 5)
    # a shift keeps a 4x4 block of the original; every shift appears; padding is zero
    assert (grid == 0).any() and not torch.equal(b, img.repeat(50, 1))
    for k in range(100):
        src = img[k % 2].reshape(5, 5)
        assert any(torch.equal(grid[k][max(0, -dy):5 - max(0, dy), max(0, -dx):5 - max(0, dx)],
                               src[max(0, dy):5 + min(0, dy), max(0, dx):5 + min(0, dx)])
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))


@pytest.mark.slow
def test_teacher_with_decay_augmentation_and_schedule_learns_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 256)
    x = rng.random((256, 64)).astype(np.float32) * 0.3
    x.reshape(256, 8, 8)[y == 1, 2:6, 2:6] += 0.7        # class 1: a bright square
    kw = dict(epochs=4, lr=0.01, batch_size=32, seed=0, progress=False, weight_decay=0.05,
              augment="crop_flip", schedule="onecycle", image_shape=(1, 8, 8))
    torch.manual_seed(0)
    model, hist = train_teacher(CNNTeacher((1, 8, 8), [8], 2), x, y, x, y, **kw,
                                checkpoint=tmp_path / "t.pt", key="k")
    assert hist.best_val_accuracy > 0.9
    torch.manual_seed(0)        # a finished state resumes to the same model without training
    again, hist2 = train_teacher(CNNTeacher((1, 8, 8), [8], 2), x, y, x, y, **kw,
                                 checkpoint=tmp_path / "t.pt", key="k")
    assert hist2.val_accuracy == hist.val_accuracy
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(UserError, match="teacher.augment"):
        train_teacher(CNNTeacher((1, 8, 8), [8], 2), x, y, x, y, **{**kw, "image_shape": (64,)})


@pytest.mark.slow
def test_validation_every_n_epochs_keeps_the_best_validated_epoch():
    rng = np.random.default_rng(0)
    x = rng.random((64, 12)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    spikes = (rng.random((64, 6, 12)) < x[:, None, :]).astype(np.uint8)
    torch.manual_seed(0)
    p = CubaParams(1024, 256, 64)
    student = SpikingNet((12,), 3, [p, p], hidden=[16], readout=True)
    hist = distill_student(student, None, build_loss([{"name": "ce"}], "t"), train_spikes=spikes,
                           train_x=x, train_y=y, val_spikes=spikes, val_y=y, epochs=5, lr=0.01,
                           batch_size=16, seed=0, progress=False, validate_every=2)
    validated = [i for i, a in enumerate(hist.val_accuracy) if np.isfinite(a)]
    assert validated == [1, 3, 4]                       # every 2nd epoch, and the last
    assert hist.best_epoch in validated
    assert hist.best_val_accuracy == max(hist.val_accuracy[i] for i in validated)


def test_init_gain_puts_initial_weights_on_the_grid():
    conv = [{"channels": 16, "kernel": 3, "stride": 2, "padding": 1},
            {"channels": 32, "kernel": 3, "stride": 2, "padding": 1}]
    p = CubaParams(2048, 1024, 64)
    torch.manual_seed(0)
    plain = zero_weight_fraction(SpikingNet((4, 28, 28), 10, [p] * 3, conv=conv, readout=True))
    torch.manual_seed(0)
    gained = zero_weight_fraction(SpikingNet((4, 28, 28), 10, [p] * 3, conv=conv, readout=True,
                                             init_gain=3.0))
    assert plain[-1] > 0.5                  # Kaiming: most dense weights start at zero
    assert all(g < q for g, q in zip(gained, plain)) and gained[-1] < 0.25


def test_per_layer_thresholds_reach_the_deployed_layers():
    recipe = recipe_from_dict({"name": "t", "student": {"hidden": [16, 8], "readout": True,
                                                        "thresholds": [100, 80, 60]}}, "t")
    net = _student(recipe, (12,), 3).to_integer()
    assert [layer.params.threshold for layer in net.layers[:2]] == [100, 80]
    assert net.layers[-1].params.threshold > 2 ** 16         # the readout never fires
    with pytest.raises(UserError, match="student.*thresholds"):
        recipe_from_dict({"name": "t", "student": {"hidden": [16], "thresholds": [1]}}, "t")


@pytest.mark.slow
def test_distill_with_validate_every_writes_a_finite_checkpoint(tmp_path):
    recipe = recipe_from_dict({"name": "t", "encoding": {"timesteps": 4},
                               "student": {"hidden": [16], "readout": True, "init_gain": 2.0},
                               "distill": {"epochs": 3, "validate_every": 2,
                                           "losses": [{"name": "ce"}]}}, "t")
    ckpt = torch.load(distill(recipe, tmp_path, progress=False), weights_only=True)
    curve = ckpt["metrics"]["student_val_curve"]
    assert curve[0] is None and curve[1] is not None and curve[2] is not None
    assert ckpt["metrics"]["student_best_epoch"] in (1, 2)
    assert all(torch.isfinite(t).all() for t in ckpt["student"].values())


def test_ann_teacher_settings_on_a_spiking_teacher_are_refused_in_one_line():
    for key, value in (("augment", "crop"), ("schedule", "cosine"), ("weight_decay", 0.1)):
        with pytest.raises(UserError, match=f"teacher.*{key}.*spiking: false") as e:
            recipe_from_dict({"name": "t", "teacher": {"spiking": True, key: value}}, "t.yaml")
        assert "\n" not in str(e.value)


@pytest.mark.slow
def test_a_longer_training_window_trains_past_T_and_deploys_at_T(tmp_path, monkeypatch):
    """distill.timesteps: full_range_kd sees every readout up to 8 steps, the network still
    deploys (and validates) at encoding.timesteps = 2."""
    import neurodeploy.distill.run as distilling
    seen = []

    def spy(*args, **kw):
        seen.append((kw["train_spikes"].shape[1], kw["val_spikes"].shape[1]))
        return distill_student(*args, **kw)
    monkeypatch.setattr(distilling, "distill_student", spy)
    recipe = recipe_from_dict({"name": "t", "encoding": {"name": "thermometer", "timesteps": 2},
                               "teacher": {"epochs": 1},
                               "student": {"hidden": [16], "readout": True},
                               "distill": {"epochs": 1, "timesteps": 8, "losses": [
                                   {"name": "full_range_kd"}]}}, "t")
    ckpt = torch.load(distill(recipe, tmp_path, progress=False), weights_only=True)
    assert seen == [(8, 2)]
    assert ckpt["recipe"]["encoding"]["timesteps"] == 2


@pytest.mark.parametrize("encoding, steps, message", [
    ({"name": "thermometer", "timesteps": 4}, 2, "shorter than the deployed"),
    ({"name": "rate", "timesteps": 4}, 8, "thermometer or remove distill.timesteps")])
def test_a_training_window_that_cannot_extend_the_deployed_one_is_refused(encoding, steps,
                                                                          message):
    with pytest.raises(UserError, match=message) as e:
        recipe_from_dict({"name": "t", "encoding": encoding,
                          "distill": {"timesteps": steps}}, "t.yaml")
    assert "\n" not in str(e.value)
