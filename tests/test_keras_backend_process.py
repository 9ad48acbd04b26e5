"""Keras gold standard (#2): the JAX backend in a process forked before Keras is imported gives the same
logits as plain PyTorch; the "clever" torch layer does not port; no fork once Keras is imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import spaces_code.keras_portable  # noqa: F401  (imports Keras on the torch backend in this process)
from spaces_code.keras_backend_process import BackendProcess

ROOT = Path(__file__).resolve().parents[1]

# A fresh interpreter: the fork must come before Keras is imported, which pytest's process has done.
SCRIPT = """
import json, sys
from spaces_code.keras_backend_process import BackendProcess
with BackendProcess("jax") as jax_process:
    import torch
    from spaces_code.keras_portable import ClassifierConfig, build_classifier, toy_dataset, torch_forward_float64
    seed = int(sys.argv[1])
    config = ClassifierConfig()
    model = build_classifier(config, seed=seed)
    tokens, _ = toy_dataset(64, config, torch.Generator().manual_seed(seed))
    standard, clever = jax_process.logits(config, model.get_weights(), tokens.numpy(), variants=(False, True))
    reference = torch_forward_float64(model, tokens).numpy()
    print(json.dumps({"shape": list(standard.shape), "error": float(abs(standard - reference).max()),
                      "clever": f"{type(clever).__name__}: {clever}"}))
"""


@pytest.mark.slow
def test_forked_jax_backend_matches_torch_float64_clever_layer_fails(seed):
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND="torch")
    child = subprocess.run([sys.executable, "-c", SCRIPT, str(seed)], capture_output=True, text=True, env=env,
                           cwd=ROOT, timeout=300, check=False)
    assert child.returncode == 0, child.stderr[-2000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["shape"] == [64, 2]
    # float32 JAX forward against float64 torch: 200-seed sweep of the trained default model gave
    # max 6.2e-7 (tests/test_keras_portable.py); 1e-5 is >= 10x that.
    assert result["error"] < 1e-5
    assert result["clever"].startswith("BackendPortError: jax backend: TypeError")  # torch got a JAX array
    assert "Tracer" in result["clever"]


def test_refuses_to_fork_after_keras_is_imported():
    with pytest.raises(RuntimeError, match="before importing keras"):
        BackendProcess("jax")
