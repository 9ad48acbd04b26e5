"""spaces_build.forkserver: one fresh, pre-imported process per command, in its own process group."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from spaces_build import forkserver

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(not forkserver.available(), reason="the fork server needs Linux")]

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra) -> dict[str, str]:
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def server():
    # A light preload keeps these tests fast; the real list (torch: seconds) is tested in
    # tests/test_engine.py::test_fork_server_preloads_torch_without_cuda_and_without_repository_modules (slow).
    with forkserver.ForkServer(_env(), preload=("json", "decimal")) as srv:
        yield srv


def _script(tmp_path: Path, body: str, name: str = "s.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _gone(pid: int, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within  # a liveness bound, not a timing assertion
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_runs_a_script_like_python(server, tmp_path):
    script = _script(tmp_path, """
        import os, sys
        print("argv", sys.argv[1:], "cwd", os.getcwd(), "x", os.environ.get("X"))
        print("to stderr", file=sys.stderr)
        sys.exit(3)
    """)
    work = tmp_path / "work"
    work.mkdir()
    done = server.run([sys.executable, str(script), "a", "b"], env=_env(X="42"), cwd=work, timeout=60)
    out = done.stdout.decode()
    assert done.returncode == 3
    assert f"argv ['a', 'b'] cwd {work} x 42" in out and "to stderr" in out


def test_same_interpreter_state_as_a_fresh_python(server, tmp_path):
    # sys.path, the hash seed, argv[0], __name__, flags: what a plain `python script.py` would see.
    script = _script(tmp_path, """
        import sys
        print(sys.path)
        print(hash("spaces"), sys.argv[0].endswith("s.py"), __name__, sys.flags.dont_write_bytecode)
        print(sorted(k for k in sys.modules if k.startswith("spaces_build")))
    """)
    fresh = subprocess.run([sys.executable, str(script)], env=_env(), cwd=tmp_path, capture_output=True)
    forked = server.run([sys.executable, str(script)], env=_env(), cwd=tmp_path, timeout=60)
    assert forked.returncode == fresh.returncode == 0
    assert forked.stdout == fresh.stdout


def test_module_mode(server, tmp_path):
    (tmp_path / "mymod.py").write_text("import sys\nprint('module', __name__, sys.argv[1:])\n")
    done = server.run([sys.executable, "-m", "mymod", "z"], cwd=tmp_path, timeout=60)
    assert done.returncode == 0
    assert done.stdout.decode().strip() == "module __main__ ['z']"


def test_one_fresh_process_per_command(server, tmp_path):
    script = _script(tmp_path, """
        import json, os
        print(os.getpid(), os.getppid(), getattr(json, "touched", False))
        json.touched = True
    """)
    seen = []
    for _ in range(3):
        done = server.run([str(script)], cwd=tmp_path, timeout=60)
        pid, ppid, touched = done.stdout.decode().split()
        seen.append(int(pid))
        assert int(ppid) == server.pid
        assert touched == "False"  # the previous child's change to a preloaded module is not here
    assert len(set(seen)) == 3 and server.pid not in seen


def test_each_child_leads_its_own_process_group_and_session(server, tmp_path):
    script = _script(tmp_path, "import os\nprint(os.getpid(), os.getpgrp(), os.getsid(0))\n")
    pid, pgrp, sid = server.run([str(script)], cwd=tmp_path, timeout=60).stdout.decode().split()
    assert pid == pgrp == sid


def test_timeout_kills_the_whole_group(server, tmp_path):
    script = _script(tmp_path, """
        import subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(grandchild.pid, flush=True)
        time.sleep(600)
    """)
    child = server.popen([str(script)], cwd=tmp_path)
    grandchild = int(child.stdout.readline())
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.5)
    assert child.poll() is None
    child.kill()
    assert child.wait(timeout=60) == -signal.SIGKILL
    child.stdout.close()
    assert _gone(grandchild)


def test_run_raises_on_timeout_and_leaves_nothing(server, tmp_path):
    script = _script(tmp_path, "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(600)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        server.run([str(script)], cwd=tmp_path, timeout=0.3)


def test_server_survives_crashes(server, tmp_path):
    crashes = {
        "segfault": ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", -signal.SIGSEGV),
        "os._exit": ("import os\nos._exit(7)\n", 7),
        "exception": ("raise ValueError('boom')\n", 1),
        "kill -9": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", -signal.SIGKILL),
    }
    for name, (body, code) in crashes.items():
        done = server.run([str(_script(tmp_path, body, f"{name.replace(' ', '')}.py"))], cwd=tmp_path, timeout=60)
        assert done.returncode == code, name
    assert b"ValueError: boom" in server.run([str(tmp_path / "exception.py")], cwd=tmp_path, timeout=60).stdout
    ok = server.run([str(_script(tmp_path, "print('still here')\n", "ok.py"))], cwd=tmp_path, timeout=60)
    assert ok.returncode == 0 and ok.stdout == b"still here\n"


def test_concurrent_commands(server, tmp_path):
    script = _script(tmp_path, "import sys, time\ntime.sleep(0.3)\nprint(sys.argv[1])\n")
    children = [server.popen([str(script), str(i)], cwd=tmp_path) for i in range(4)]
    outputs = [c.stdout.read() for c in children]
    assert [c.wait(timeout=60) for c in children] == [0] * 4
    assert outputs == [f"{i}\n".encode() for i in range(4)]
    for c in children:
        c.stdout.close()


def test_parent_pid_variable_names_the_server(tmp_path):
    script = _script(tmp_path, "import os\nprint(os.environ['WATCH_PID'] == str(os.getppid()))\n")
    with forkserver.ForkServer(_env(WATCH_PID="1"), preload=(), parent_pid_var="WATCH_PID") as srv:
        assert srv.run([str(script)], cwd=tmp_path, timeout=60).stdout == b"True\n"


def test_start_up_settings_cannot_change(server, tmp_path):
    with pytest.raises(ValueError, match="PYTHONHASHSEED"):
        server.popen([str(_script(tmp_path, "pass\n"))], env=_env(PYTHONHASHSEED="1"), cwd=tmp_path)
    with pytest.raises(ValueError, match="expected"):
        server.popen([sys.executable, "-c", "pass"])


def test_close_leaves_no_process(tmp_path):
    script = _script(tmp_path, """
        import subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(grandchild.pid, flush=True)
        time.sleep(600)
    """)
    srv = forkserver.ForkServer(_env(), preload=()).start()
    child = srv.popen([str(script)], cwd=tmp_path)
    grandchild = int(child.stdout.readline())
    server_pid = srv.pid
    srv.close()
    assert child.wait(timeout=60) == -signal.SIGKILL
    child.stdout.close()
    for pid in (server_pid, child.pid, grandchild):
        assert _gone(pid), pid


def test_client_killed_with_sigkill_takes_everything_down(tmp_path):
    client = _script(tmp_path, f"""
        import sys, time
        from spaces_build import forkserver
        srv = forkserver.ForkServer(preload=()).start()
        child = srv.popen([sys.executable, {str(tmp_path / "sleep.py")!r}])
        print(srv.pid, child.pid, flush=True)
        time.sleep(600)
    """, "client.py")
    _script(tmp_path, "import time\ntime.sleep(600)\n", "sleep.py")
    proc = subprocess.Popen([sys.executable, str(client)], cwd=tmp_path, stdout=subprocess.PIPE, env=_env())
    try:
        server_pid, child_pid = map(int, proc.stdout.readline().split())
        assert _alive(server_pid) and _alive(child_pid)
        proc.kill()
        proc.wait()
        assert _gone(server_pid) and _gone(child_pid)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_missing_preload_is_reported_not_fatal(tmp_path):
    with forkserver.ForkServer(_env(), preload=("json", "no_such_module_spaces")) as srv:
        srv.wait_ready()
        assert srv.preloaded == ["json"] and "no_such_module_spaces" in srv.preload_errors
        assert srv.run([str(_script(tmp_path, "print(1)\n"))], cwd=tmp_path, timeout=60).stdout == b"1\n"
