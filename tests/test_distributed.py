"""`torchrun --nproc_per_node 2` of distill: two real CPU processes (gloo), each a shard of every
batch, rank 0 writing the checkpoint; the result trains like one process on whole batches."""
import subprocess
import sys

import pytest
import torch

from neurodeploy.checkpoint import load_checkpoint
from neurodeploy.distill.run import distill
from neurodeploy.recipe import load_recipe

pytestmark = pytest.mark.slow

TINY = """
name: tiny-ddp
encoding: {timesteps: 4}
student: {hidden: [16], readout: true}
distill: {epochs: 2, batch_size: %d, lr: 0.005, losses: [{name: ce}]}
"""


def _torchrun(tmp_path, batch_size: int) -> subprocess.CompletedProcess:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY % batch_size)
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "neurodeploy", "distill", str(recipe), "--out", str(tmp_path / "ddp"), "-q"],
        capture_output=True, text=True, timeout=600,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})


def test_two_processes_write_one_finite_checkpoint_like_one_process(tmp_path):
    proc = _torchrun(tmp_path, 64)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpt = tmp_path / "ddp" / "checkpoint.pt"
    student, recipe, saved = load_checkpoint(ckpt)       # validated: finite, right shapes
    assert (tmp_path / "ddp" / "history.jsonl").is_file()
    assert not list((tmp_path / "ddp").glob("*_state.pt"))
    assert saved["metrics"]["student_best_val_accuracy"] > 0.3       # 10 classes
    # one process on whole batches: the same training up to float summation order
    single = load_recipe(str(tmp_path / "tiny.yaml"))
    one, _, _ = load_checkpoint(distill(single, tmp_path / "one", progress=False))
    for (name, a), b in zip(student.state_dict().items(), one.state_dict().values()):
        assert (a - b).abs().max() <= 0.05 * b.abs().max(), name
    # (and not trivially: the distilled weights moved away from their initialisation)
    torch.manual_seed(0)
    from neurodeploy.checkpoint import _student
    init = _student(recipe, tuple(saved["input_shape"]), saved["classes"])
    assert any((a - b).abs().max() > 0.05 * b.abs().max()
               for a, b in zip(student.state_dict().values(), init.state_dict().values()))


def test_a_batch_size_the_processes_cannot_share_is_one_line(tmp_path):
    proc = _torchrun(tmp_path, 63)
    assert proc.returncode != 0
    assert "neurodeploy: error: recipe distill.batch_size: 63 is not divisible by the 2 " \
           "processes" in proc.stderr
    assert not (tmp_path / "ddp" / "checkpoint.pt").exists()
