"""A pre-imported worker: a server process imports torch, NumPy and matplotlib once, then forks one
fresh child per snippet, so that no snippet pays ~1-2 s of imports.

Why not the standard library's ``multiprocessing`` "forkserver" start method, which preloads modules
the same way (``set_forkserver_preload``)? Its children run a pickled Python callable after
re-importing the parent's ``__main__`` (here mkdocs or pytest), inherit the server's stdio, stay in
its session, and there is one server per parent process whose environment is fixed at first use. A
snippet needs the opposite: a child that behaves like ``python -m <runner> <args>`` with a given
environment, working directory and stdout pipe, in its own process group. So this module keeps that
server's design (a Unix socket, file descriptors passed with ``socket.send_fds``, a SIGCHLD wake-up
fd, one ``fork()`` per request) and changes what the child does.

Guarantees, each tested in ``tests/test_forkserver.py``:

- one fresh process per command: a child is forked from the clean, preloaded server and never
  reused; nothing one child does reaches the next;
- the server never imports a repository module (only ``preload``, third-party) and never
  initialises CUDA (importing torch does not), so a fork is safe and dependency recording in the
  child sees every repository module the snippet imports;
- each child calls ``setsid()`` before it reports its pid: it leads its own process group, and
  :meth:`Child.kill` (or ``os.killpg(child.pid, ...)``) takes its own children with it;
- a child's crash (segfault, ``os._exit``, a signal) is only that child's exit status; the server
  goes on serving;
- :meth:`ForkServer.close`, the client's death (even ``kill -9``: the kernel closes its socket) or
  the server's parent changing all make the server kill every child's group and exit.

Settings that an interpreter reads once at start-up or that libraries read at import
(``PYTHONHASHSEED``, ``OMP_NUM_THREADS``, ``MPLBACKEND`` ...) come from the environment the server
was started with; :meth:`ForkServer.popen` refuses an environment that differs in one of them.
Linux only (``SOCK_SEQPACKET``, ``fork``); elsewhere :func:`available` is false and callers use a
plain subprocess.
"""
from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import weakref

# What the server imports before it forks (third-party only: never a repository module).
# ``torch._dynamo`` (with SymPy, ~800 modules, ~1 s of CPU): torch imports it lazily, on the first
# step of any ``torch.optim`` optimizer, so without it here every snippet that trains pays that
# second again. It starts no thread and does not initialise CUDA. The two matplotlib backends are
# what every figure of a snippet uses (drawing, and the runner's SVG export). Not Keras: it fixes
# its backend when imported, and a snippet may fork a child that imports it with another backend
# (snippets/keras-gold-standard).
PRELOAD = ("numpy", "torch", "torch._dynamo", "matplotlib", "matplotlib.pyplot",
           "matplotlib.backends.backend_agg", "matplotlib.backends.backend_svg")

# Read once, when the interpreter starts or a preloaded library is imported: a child cannot change
# them, so a request whose environment differs here from the server's is refused.
FIXED_AT_START = ("PYTHONHASHSEED", "PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE",
                  "PYTHONUNBUFFERED", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONWARNINGS",
                  "PYTHONSAFEPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "MPLBACKEND", "MPLCONFIGDIR", "CUDA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG",
                  "TORCH_HOME", "LD_PRELOAD", "LD_LIBRARY_PATH")

MAX_MESSAGE = 1 << 20  # one request (argv, env, cwd) is a few KiB


def available() -> bool:
    """Whether this platform has what the server needs (``fork``, ``SOCK_SEQPACKET``, fd passing)."""
    return (sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(socket, "SOCK_SEQPACKET")
            and hasattr(socket, "send_fds"))


class ForkServerError(RuntimeError):
    """The server could not start, preload, or answer."""


# --------------------------------------------------------------------------------------------------
# Client (the build)


class Child:
    """One forked command, with the part of ``subprocess.Popen``'s interface the executor uses:
    ``pid``, ``stdout`` (its stdout and stderr, one pipe), ``poll()``, ``wait(timeout)``,
    ``returncode`` (negative: killed by that signal), ``kill()`` (the whole process group)."""

    def __init__(self, sock: socket.socket, stdout, pid: int):
        self._sock = sock
        self.stdout = stdout
        self.pid = pid
        self.returncode: int | None = None
        self.args = None

    def _receive(self, timeout: float | None) -> bool:
        if self.returncode is not None:
            return True
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(MAX_MESSAGE)
        except (TimeoutError, BlockingIOError):
            return False
        except OSError:
            data = b""
        if not data:  # the server died: its children died with it (see the module docstring)
            self.returncode = -signal.SIGKILL
        else:
            self.returncode = int(json.loads(data)["returncode"])
        self._sock.close()
        return True

    def poll(self) -> int | None:
        self._receive(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._receive(timeout):
            raise subprocess.TimeoutExpired(self.args or [], timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Signal the child's whole process group (it is its own group leader)."""
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkServer:
    """Start with :meth:`start` (returns at once; the preload runs in the background), run commands
    with :meth:`popen` or :meth:`run`, stop with :meth:`close` (or ``with ForkServer(...) as s``).

    ``env``: the server's environment, and the default of every child's. ``parent_pid_var``: a
    variable that children find set to the server's pid (their parent), for a child that watches
    for its parent's death. Thread-safe: several threads may ``popen`` at once.
    """

    def __init__(self, env: dict[str, str] | None = None, preload=PRELOAD, *,
                 parent_pid_var: str | None = None, start_timeout: float = 600.0):
        self.env = dict(os.environ if env is None else env)
        self.preload = tuple(preload)
        self.parent_pid_var = parent_pid_var
        self.start_timeout = start_timeout
        self.preloaded: list[str] = []
        self.preload_errors: dict[str, str] = {}
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._ready = False
        self._finalizer = None

    # lifecycle

    def start(self) -> "ForkServer":
        if self._proc is not None:
            return self
        if not available():
            raise ForkServerError("a fork server needs Linux (fork, SOCK_SEQPACKET, fd passing)")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__, "--fd", str(theirs.fileno()), *self.preload],
                env=self.env, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, cwd="/", start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        self.pid = self._proc.pid
        self._finalizer = weakref.finalize(self, _shutdown, self._proc, ours)
        return self

    def _wait_ready(self) -> None:
        """Under ``_lock``: read the server's first message, once."""
        if self._ready:
            return
        if self._sock is None:
            raise ForkServerError("the fork server is not started (call start())")
        self._sock.settimeout(self.start_timeout)
        try:
            data = self._sock.recv(MAX_MESSAGE)
        except (OSError, TimeoutError) as exc:
            raise ForkServerError(f"the fork server did not get ready: {exc}") from None
        if not data:
            code = self._proc.wait(timeout=10) if self._proc else None
            raise ForkServerError(f"the fork server exited while preloading (exit status {code}); "
                                  "run the build with --no-preload to see the error in a snippet")
        ready = json.loads(data)
        self.preloaded = ready["preloaded"]
        self.preload_errors = ready["errors"]
        self._ready = True
        self._sock.settimeout(None)

    def wait_ready(self) -> "ForkServer":
        with self._lock:
            self._wait_ready()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop the server: it kills the group of every child still running, reaps them and exits."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._proc is not None:
            _shutdown(self._proc, self._sock, timeout)
        self._proc = None
        self._sock = None
        self._ready = False

    def __enter__(self) -> "ForkServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # commands

    def popen(self, args: list[str], *, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None,
              stdout=None) -> Child:
        """Fork a child that runs ``args`` as ``python`` would: ``[sys.executable, "-m", module, ...]``
        or ``[sys.executable, script, ...]`` (``sys.executable`` may be left out). Its stdout and
        stderr go to one new pipe, ``child.stdout``, unless ``stdout`` (a file descriptor) is given;
        stdin is ``/dev/null``."""
        args = [os.fspath(a) for a in args]
        if args and args[0] == sys.executable:
            args = args[1:]
        if not args or (args[0] == "-m" and len(args) < 2) or (args[0].startswith("-") and args[0] != "-m"):
            raise ValueError(f"expected [python,] -m module args... or [python,] script args..., got {args!r}")
        env = dict(self.env if env is None else env)
        differ = [name for name in FIXED_AT_START if env.get(name) != self.env.get(name)]
        if differ:
            raise ValueError("the fork server's children inherit these from the server's start-up "
                             f"environment and cannot change them: {', '.join(differ)}")
        request = {"args": args, "env": env, "cwd": os.fspath(cwd) if cwd is not None else os.getcwd(),
                   "parent_pid_var": self.parent_pid_var}
        data = json.dumps(request).encode("utf-8")
        if len(data) > MAX_MESSAGE:
            raise ValueError("request too large (environment over 1 MiB?)")
        if stdout is None:
            read_fd, write_fd = os.pipe()
        else:
            read_fd, write_fd = None, stdout
        run_ours, run_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with self._lock:
                self._wait_ready()
                try:
                    socket.send_fds(self._sock, [data], [run_theirs.fileno(), write_fd])
                except OSError as exc:
                    raise ForkServerError(f"the fork server is gone ({exc})") from None
            run_theirs.close()
            if stdout is None:
                os.close(write_fd)
                write_fd = None
            # The child itself reports its pid, after setsid(): its process group exists from then on.
            run_ours.settimeout(self.start_timeout)
            reply = run_ours.recv(MAX_MESSAGE)
            message = json.loads(reply) if reply else {"error": "the fork server closed the connection"}
            if "error" in message:
                raise ForkServerError(f"could not start {args!r}: {message['error']}")
            run_ours.settimeout(None)
        except BaseException:
            run_ours.close()
            run_theirs.close()
            for fd in (read_fd, write_fd if stdout is None else None):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            raise
        child = Child(run_ours, os.fdopen(read_fd, "rb") if read_fd is not None else None, int(message["pid"]))
        child.args = [sys.executable, *args]
        return child

    def run(self, args: list[str], *, env=None, cwd=None, timeout: float | None = None
            ) -> subprocess.CompletedProcess:
        """Like ``subprocess.run(args, capture_output=True)`` with stderr merged into stdout; on
        timeout the child's process group is killed and ``subprocess.TimeoutExpired`` raised."""
        child = self.popen(args, env=env, cwd=cwd)
        chunks: list[bytes] = []
        reader = threading.Thread(target=lambda: chunks.append(child.stdout.read()), daemon=True)
        reader.start()
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise
        finally:
            reader.join(timeout=10)
            child.stdout.close()
        return subprocess.CompletedProcess(child.args, child.returncode, b"".join(chunks), None)


def _shutdown(proc: subprocess.Popen, sock: socket.socket | None, timeout: float = 10.0) -> None:
    if sock is not None:
        sock.close()  # EOF: the server kills and reaps its children, then exits
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


# --------------------------------------------------------------------------------------------------
# Server


def _serve(fd: int, preload: list[str]) -> None:
    ctl = socket.socket(fileno=fd)
    parent = os.getppid()
    preloaded, errors = [], {}
    for name in preload:
        try:
            __import__(name)
            preloaded.append(name)
        except Exception as exc:  # noqa: BLE001 - a missing library is the snippet's error, not ours
            errors[name] = f"{type(exc).__name__}: {exc}"
    # Forget this package and this file: a child starts with no repository module in sys.modules,
    # like `python` (its dependency recording reads sys.modules). This code keeps running: its
    # functions hold their globals. `__mp_main__` is multiprocessing's alias of `__main__`.
    package = (__spec__.parent if __spec__ else "") or ""
    for name in list(sys.modules):
        if package and (name == package or name.startswith(package + ".")):
            del sys.modules[name]
    import types

    blank = types.ModuleType("__main__")
    for name in ("__main__", "__mp_main__"):
        if name in sys.modules:
            sys.modules[name] = blank
    # Everything imported so far lives as long as the server: move it out of the cyclic garbage
    # collector's sight (gc.freeze), so that a child's collections do not walk (and, through the
    # reference counts they update, copy on write) the preloaded modules' hundreds of thousands of
    # objects. Measured: ~10% of a forked snippet's CPU time. It changes when, not whether, a
    # child's own garbage is collected.
    import gc

    gc.collect()
    gc.freeze()
    try:
        ctl.send(json.dumps({"preloaded": preloaded, "errors": errors}).encode())
    except OSError:
        return

    sig_r, sig_w = os.pipe()
    os.set_blocking(sig_r, False)
    os.set_blocking(sig_w, False)
    signal.set_wakeup_fd(sig_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the build decides when to stop, not the terminal
    sel = selectors.DefaultSelector()
    sel.register(ctl, selectors.EVENT_READ, "ctl")
    sel.register(sig_r, selectors.EVENT_READ, "sig")
    children: dict[int, socket.socket] = {}  # pid -> the connection its exit status goes to

    def kill_group(pid: int) -> None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:  # not yet its own group leader (killed within microseconds of the fork)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def reap(block: bool = False) -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = children.pop(pid, None)
            if conn is not None:
                try:
                    conn.send(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode())
                except OSError:
                    pass
                try:
                    sel.unregister(conn)
                except (KeyError, ValueError):
                    pass  # its client had gone already
                conn.close()

    def stop() -> None:
        for pid in list(children):
            kill_group(pid)
        reap(block=True)
        os._exit(0)

    while True:
        for key, _ in sel.select(timeout=1.0):
            if key.data == "sig":
                try:
                    while os.read(sig_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                reap()
            elif key.data == "ctl":
                try:
                    msg, fds, _, _ = socket.recv_fds(ctl, MAX_MESSAGE, 2)
                except OSError:
                    msg, fds = b"", []
                if not msg:
                    stop()
                conn, out = socket.socket(fileno=fds[0]), fds[1]
                try:
                    request = json.loads(msg)
                    pid = os.fork()
                except Exception as exc:  # noqa: BLE001 - say so to this client, keep serving the others
                    try:
                        conn.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
                    except OSError:
                        pass
                    conn.close()
                    os.close(out)
                    continue
                if pid == 0:
                    _child(request, conn, out, close=[ctl.fileno(), sig_r, sig_w, sel]
                           + list(children.values()))
                os.close(out)
                children[pid] = conn
                sel.register(conn, selectors.EVENT_READ, pid)
            else:  # a client closed its connection before its child ended: it wants no more of it
                try:
                    gone = not key.fileobj.recv(MAX_MESSAGE)
                except OSError:
                    gone = True
                if gone and key.data in children:
                    kill_group(key.data)
                    sel.unregister(key.fileobj)  # its exit status is reaped and dropped
        if os.getppid() != parent:  # the client died without closing (its socket may be shared)
            stop()


def _child(request: dict, conn: socket.socket, out: int, close: list) -> None:
    """In the forked child: become a fresh ``python`` running ``request`` and never return."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD,):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for thing in close:
            try:
                thing.close() if hasattr(thing, "close") else os.close(thing)
            except OSError:
                pass
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        for fd in (devnull, out):
            if fd > 2:
                os.close(fd)
        env = dict(request["env"])
        if request.get("parent_pid_var"):
            env[request["parent_pid_var"]] = str(os.getppid())
        os.environ.clear()
        os.environ.update(env)
        os.chdir(request["cwd"])
        conn.send(json.dumps({"pid": os.getpid()}).encode())
        conn.close()
        code = _run_like_python(request["args"])
    except BaseException:  # noqa: BLE001 - whatever happens, this process ends here
        try:
            import traceback

            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
        os._exit(code)


def _run_like_python(args: list[str]) -> int:
    """``python -m module args`` or ``python script args`` in this process: its exit status."""
    import runpy
    import traceback

    code = 0
    try:
        if args[0] == "-m":
            sys.argv = [args[1], *args[2:]]  # runpy puts the module's file in argv[0]
            sys.path[0] = os.getcwd()
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(args)
            sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
            runpy.run_path(args[0], run_name="__main__")
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - like the interpreter: traceback, exit status 1
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # like the interpreter's shutdown, before the process ends
    return code


def _main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] != "--fd":
        raise SystemExit("usage: python -m spaces_build.forkserver --fd FD [module ...] (started by ForkServer)")
    _serve(int(argv[1]), argv[2:])


if __name__ == "__main__":
    _main(sys.argv[1:])
