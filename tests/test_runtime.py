"""spaces_code.runtime: the device choice and seeding that snippets rely on."""
import pytest
import torch

from spaces_code.runtime import best_time_ms, make_generator, pick_device


def test_pick_device_choices(monkeypatch):
    monkeypatch.delenv("SPACES_DEVICE", raising=False)
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("SPACES_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            pick_device("cuda")


def test_make_generator_is_reproducible(device):
    a = torch.randn(5, generator=make_generator(7, device), device=device)
    b = torch.randn(5, generator=make_generator(7, device), device=device)
    c = torch.randn(5, generator=make_generator(8, device), device=device)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_best_time_ms_takes_the_minimum():
    calls = []
    ms = best_time_ms(lambda: calls.append(1), repeats=3)
    assert len(calls) == 4 and 0 <= ms < 1000  # one warm-up and three timed runs
