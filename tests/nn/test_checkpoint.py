"""Training state through a checkpoint: the learning-rate schedule comes back as it was, never replayed."""

from __future__ import annotations

import json

import pytest
import torch

from bioSNN.nn.checkpoint import restore_training_state, scheduler_to_json, training_state
from bioSNN.nn.train import step_schedule

pytestmark = pytest.mark.torch


def _trained(epochs: int, milestones=(0.5, 0.75)):
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    sched = step_schedule(opt, 4, milestones)
    for _ in range(epochs):
        (p**2).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    return p, opt, sched


def test_a_schedule_restored_after_a_drop_goes_on_as_the_uninterrupted_one():
    _, ref_opt, ref = _trained(4)
    _, opt, sched = _trained(2)  # killed after epoch 2: one drop behind it
    arrays, extra = training_state(opt, sched)
    extra = json.loads(json.dumps(extra))  # what a bundle's JSON keeps
    p2 = torch.nn.Parameter(torch.ones(3))
    opt2 = torch.optim.SGD([p2], lr=0.1, momentum=0.9)
    sched2 = step_schedule(opt2, 4, (0.5, 0.75))
    restore_training_state(arrays, extra, opt2, sched2, epochs_done=2)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.01)  # once lowered, not twice
    for _ in range(2):
        opt2.step()
        sched2.step()
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in ref_opt.param_groups]
    assert sched2.last_epoch == ref.last_epoch == 4


def test_a_checkpoint_without_schedule_state_moves_the_schedule_on_without_stepping():
    _, opt, sched = _trained(3)
    arrays, extra = training_state(opt)  # as older checkpoints: no "scheduler"
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.ones(3))], lr=0.1, momentum=0.9)
    sched2 = step_schedule(opt2, 4, (0.5, 0.75))
    restore_training_state(arrays, extra, opt2, sched2, epochs_done=3)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.001)
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.001)  # no milestone at 4
    assert sched2.last_epoch == 4


def test_scheduler_state_that_json_cannot_hold_is_refused_by_key():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    assert json.loads(json.dumps(scheduler_to_json(plateau)))["patience"] == 10  # numbers: stored

    class Odd:
        def state_dict(self):
            return {"last_epoch": 1, "hook": object()}

    with pytest.raises(TypeError, match="'hook'.*without pickle"):
        scheduler_to_json(Odd())


def test_importing_the_engine_switches_off_mkls_dynamic_threads():
    """With MKL's dynamic threading, a busy machine ran some products on fewer threads than asked for: other
    summation orders, other last bits, a resume that is not bit-identical."""
    import subprocess
    import sys

    code = "import os; os.environ.pop('MKL_DYNAMIC', None); import bioSNN.nn; print(os.environ['MKL_DYNAMIC'])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "FALSE", r.stderr[-2000:]
