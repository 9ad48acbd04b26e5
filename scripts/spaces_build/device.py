"""``--device auto`` made concrete: ``cuda`` when torch sees a GPU, else ``cpu``; torch is never imported here.

No NVIDIA device node means CPU at once; otherwise a child process asks torch once, and the answer
is kept in ``.cache/device-probe.json`` (keyed by interpreter, torch version, driver and
``CUDA_VISIBLE_DEVICES``).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .cache import atomic_write
from .config import EngineError


def version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def resolve_device(requested: str, root: Path) -> str:
    if requested == "cpu":
        return "cpu"
    nodes = [p for p in ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version") if os.path.exists(p)]
    if not nodes and requested == "auto":
        return "cpu"
    try:
        driver = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        driver = ""
    probe_key = hashlib.sha256(json.dumps(
        [sys.executable, version_of("torch"), driver, os.environ.get("CUDA_VISIBLE_DEVICES")]).encode()).hexdigest()
    probe_file = root / ".cache" / "device-probe.json"
    available = None
    try:
        data = json.loads(probe_file.read_text())
        if data.get("key") == probe_key:
            available = bool(data["cuda"])
    except (OSError, ValueError, KeyError):
        pass
    if available is None:
        proc = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                              capture_output=True, text=True, timeout=300)
        available = proc.stdout.strip() == "True"
        atomic_write(probe_file, json.dumps({"key": probe_key, "cuda": available}).encode())
    if requested == "cuda" and not available:
        raise EngineError("--device cuda was requested but torch.cuda.is_available() is False here")
    return "cuda" if available else "cpu"
