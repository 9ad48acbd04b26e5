"""The ``spaces`` command: build, serve, validate, scaffold and check the archive.

    spaces build [--site-dir DIR] [--jobs N] [--device cpu|cuda|auto] [--timeout S] [--keep-going]
                 [--execute-only] [--shard K/N] [--no-execute] [--no-preload] [--sandbox auto|off]
                 [--no-strict] [--quiet]
    spaces serve [--dev-addr HOST:PORT] [same execution options]
    spaces validate [--root DIR]
    spaces new SLUG --title ... --date YYYY-MM-DD [...]
    spaces check-reproducible [--jobs N] [--device ...] [--work DIR] [--keep]

``build`` and ``serve`` run MkDocs in this process with the ``spaces`` plugin's options of mkdocs.yml,
overridden by the flags given here (nothing travels through the environment). A plain ``mkdocs build``
or ``mkdocs serve`` executes stale snippets too; this command adds the flags, ``--execute-only`` (fill
the cache, build no site: CI shards) and a closing line with the time taken.

Exit status: 0 on success; 1 when validation finds a problem, a snippet fails or times out (the
message names the snippet path, its article, the line and the exception), or the strict build has
warnings.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from .config import DEFAULT_TIMEOUT, DEVICES, EngineError, Options
from .project import find_root

PLUGIN = "spaces"


def _execution_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("execution (default: the spaces plugin's options in mkdocs.yml)")
    g.add_argument("--jobs", "-j", type=int, default=None, help="snippets run in parallel (0: one per core)")
    g.add_argument("--device", choices=DEVICES, default=None, help="device the snippets run on (auto: cuda when available)")
    g.add_argument("--timeout", type=float, default=None,
                   help=f"seconds per snippet before its process group is killed (default {DEFAULT_TIMEOUT:g})")
    g.add_argument("--keep-going", action="store_true", default=None,
                   help="run every snippet and report all failures, instead of stopping at the first")
    g.add_argument("--no-execute", dest="execute", action="store_false", default=None,
                   help="execute nothing: a snippet not in the cache fails the build (CI, after merging shards)")
    g.add_argument("--no-preload", dest="preload", action="store_false", default=None,
                   help="start every snippet as a plain new interpreter (no pre-imported fork server)")
    g.add_argument("--sandbox", choices=("auto", "off"), default=None,
                   help="off: no Landlock; compare the repository before and after each snippet instead")
    parser.add_argument("--config-file", "-f", default=None, help="mkdocs.yml (default: found from the working directory)")
    parser.add_argument("--quiet", "-q", action="store_true", help="only warnings and errors")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="spaces", description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser("build", help="execute what is stale, then build the site (strict)",
                       description="Execute the stale snippets, then build the site with MkDocs (--strict).")
    b.add_argument("--site-dir", default=None, help="output directory (default: site/)")
    b.add_argument("--no-strict", action="store_true", help="do not fail on MkDocs warnings")
    b.add_argument("--execute-only", action="store_true", help="execute stale snippets into the cache; build no site")
    b.add_argument("--shard", default=None, metavar="K/N",
                   help="with --execute-only: execute only shard K of N of the stale snippets")
    b.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # scripts/build.py --serve
    b.add_argument("--dev-addr", default=None, help=argparse.SUPPRESS)
    _execution_flags(b)
    s = sub.add_parser("serve", help="serve the site with live reload, re-running what an edit affects",
                       description="Serve the site on http://127.0.0.1:8000 with live reload; an edit of a post, "
                                   "snippet or module re-runs the snippets it affects.")
    s.add_argument("--dev-addr", default=None, help="HOST:PORT (default from mkdocs.yml)")
    _execution_flags(s)
    v = sub.add_parser("validate", help="check every article, snippet, module and test; list all problems",
                       description="Check every article, snippet, module and test; print each problem as "
                                   "path:line: message — fix.")
    v.add_argument("--root", type=Path, default=None, help="repository root (default: the folder of mkdocs.yml)")
    sub.add_parser("new", help="scaffold a new article (post, snippet, module, test)", add_help=False)
    sub.add_parser("check-reproducible", help="two clean builds must give the same site", add_help=False)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "new":
        from . import scaffold

        return scaffold.main(argv[1:])
    if argv and argv[0] == "check-reproducible":
        from . import reproducible

        return reproducible.main(argv[1:])
    args = parser().parse_args(argv)
    if args.command == "validate":
        return _validate(args)
    if args.command == "build" and args.serve:
        args.command = "serve"
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    config_file = Path(args.config_file).resolve() if args.config_file else find_root() / "mkdocs.yml"
    if not config_file.is_file():
        print(f"spaces: {config_file} not found (run in the repository, or pass --config-file)", file=sys.stderr)
        return 1
    # pymdownx.snippets resolves snippets/... includes against the working directory
    os.chdir(config_file.parent)
    overrides = {k: getattr(args, k) for k in ("jobs", "device", "timeout", "keep_going", "execute", "preload", "sandbox")
                 if getattr(args, k) is not None}
    _logging(args.quiet)
    if args.command == "serve":
        return _serve(config_file, overrides, args.dev_addr)
    if args.execute_only:
        return _execute_only(config_file, overrides, args.shard)
    if args.shard:
        print("spaces: --shard needs --execute-only", file=sys.stderr)
        return 2
    return _build(config_file, overrides, args)


_LOG_STATE = []  # MkDocs' State removes its handler when collected: keep it for the process


def _logging(quiet: bool) -> None:
    from mkdocs.__main__ import State  # MkDocs' own log format, as the `mkdocs` command shows it

    if not _LOG_STATE:
        _LOG_STATE.append(State())
    _LOG_STATE[0].logger.setLevel(logging.WARNING if quiet else logging.INFO)


def read_yaml(config_file: Path) -> dict:
    """mkdocs.yml as MkDocs reads it (``!ENV``, ``!relative $config_dir/...``, ``INHERIT``), unvalidated."""
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.utils.yaml import get_yaml_loader, yaml_load

    placeholder_config = MkDocsConfig(config_file_path=str(config_file))
    with open(config_file, "rb") as fh:
        return yaml_load(fh, loader=get_yaml_loader(config=placeholder_config)) or {}


def plugin_entries(config_file: Path, overrides: dict, raw: dict | None = None) -> dict:
    """The ``plugins:`` of ``config_file`` as a mapping (name -> options) with ``overrides`` applied to
    the spaces plugin's options. A mapping, because MkDocs empties the one-item dicts of a list as it
    reads them, and ``mkdocs serve`` reads these again on every rebuild. ``raw``: the file as
    :func:`read_yaml` gave it, when the caller has read it already."""
    raw = read_yaml(config_file) if raw is None else raw
    entries: dict[str, dict] = {}
    listed = raw.get("plugins") or []
    for entry in listed.items() if isinstance(listed, dict) else listed:
        if isinstance(entry, str):
            name, options = entry, {}
        elif isinstance(entry, tuple):
            name, options = entry
        else:
            (name, options), = entry.items()
        entries[name] = dict(options or {})
    if PLUGIN in entries:
        entries[PLUGIN].update(overrides)
    elif overrides:
        raise EngineError(f"{config_file} lists no '{PLUGIN}' plugin: the execution flags have nothing to configure")
    return entries


def _load(config_file: Path, overrides: dict, raw: dict | None = None, **kwargs):
    from mkdocs.config import load_config

    return load_config(config_file=str(config_file), plugins=plugin_entries(config_file, overrides, raw), **kwargs)


def prestart(config_file: Path, overrides: dict, shard: tuple[int, int] | None = None) -> dict | None:
    """Start the fork server before MkDocs loads its configuration and plugins, if snippets will run
    (``spaces_build.engine.prestart``): its seconds of importing torch overlap with MkDocs' start-up
    and the validation. Never fails: the build's own checks report any problem later. Returns
    mkdocs.yml as :func:`read_yaml` read it (``None`` if it could not), for :func:`_load`."""
    raw = None
    try:
        raw = read_yaml(config_file)
        entries = plugin_entries(config_file, overrides, raw)
        if PLUGIN not in entries:
            return raw
        from .plugin import SpacesConfig, options_from

        cfg = SpacesConfig()
        cfg.load_dict(dict(entries[PLUGIN] or {}))
        failed, _ = cfg.validate()
        if failed:
            return raw  # the build reports the option's error when MkDocs loads the plugin
        options = options_from(cfg)
        options.shard = shard
        docs_dir = config_file.parent / str(raw.get("docs_dir") or "docs")
        from .discovery import pages_of
        from .engine import prestart as engine_prestart

        engine_prestart(config_file.parent, pages_of(docs_dir), options)
    except Exception:  # noqa: BLE001 - an optimisation only
        pass
    return raw


def _build(config_file: Path, overrides: dict, args) -> int:
    from mkdocs.commands.build import build
    from mkdocs.exceptions import Abort, MkDocsException

    from .engine import forget_prestart

    start = time.perf_counter()
    site_dir = str(Path(args.site_dir).resolve()) if args.site_dir else None
    code = 0
    raw = prestart(config_file, overrides)
    try:
        config = _load(config_file, overrides, raw, site_dir=site_dir, strict=not args.no_strict)
        config.plugins.on_startup(command="build", dirty=False)
        try:
            build(config)
        finally:
            config.plugins.on_shutdown()
    except Abort as exc:  # MkDocs has logged the reason already
        print("\n" + exc.format_message(), file=sys.stderr)
        code = 1
    except (EngineError, MkDocsException) as exc:
        logging.getLogger("mkdocs").error(str(exc))
        code = 1
    finally:
        forget_prestart()  # a build that failed before its snippets ran
    if not args.quiet:
        verdict = "done" if code == 0 else "FAILED"
        print(f"spaces build: {verdict} in {time.perf_counter() - start:.1f} s "
              f"(site: {site_dir or config_file.parent / 'site'})", file=sys.stderr)
    return code


def _serve(config_file: Path, overrides: dict, dev_addr: str | None) -> int:
    from mkdocs.commands.serve import serve
    from mkdocs.exceptions import MkDocsException

    try:
        serve(config_file=str(config_file), livereload=True, dev_addr=dev_addr,
              plugins=plugin_entries(config_file, overrides))
    except (EngineError, MkDocsException) as exc:
        print(f"spaces serve: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _execute_only(config_file: Path, overrides: dict, shard_spec: str | None) -> int:
    """Validation, then the stale snippets (or shard K/N of them) into the cache; no site."""
    from mkdocs.exceptions import MkDocsException

    from .discovery import pages_of
    from .engine import run_build
    from .engine import forget_prestart
    from .plugin import validate_memoized
    from .shard import parse

    start = time.perf_counter()
    try:
        early_shard = parse(shard_spec) if shard_spec else None
    except ValueError:
        early_shard = None
    raw = prestart(config_file, overrides, early_shard)
    try:
        config = _load(config_file, overrides, raw)
        plugin = config.plugins.get(PLUGIN)
        if plugin is None:
            raise EngineError(f"{config_file} lists no '{PLUGIN}' plugin")
        options: Options = plugin.options()
        if shard_spec:
            try:
                options.shard = parse(shard_spec)
            except ValueError as exc:
                raise EngineError(f"--shard {shard_spec}: {exc}") from None
        root = config_file.parent
        if plugin.config.validation:
            problems = validate_memoized(root)
            if problems:
                raise EngineError(f"Validation failed: {len(problems)} problem(s); nothing was executed:\n"
                                  + "\n".join(f"  {p}" for p in problems))
        state = run_build(root, pages_of(Path(config.docs_dir)), options)
    except (EngineError, MkDocsException) as exc:
        print(f"spaces build --execute-only: {exc}", file=sys.stderr)
        return 1
    finally:
        forget_prestart()
    print(f"spaces build --execute-only: {state.executed} executed, {len(state.records) - state.executed} cached "
          f"in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def _validate(args) -> int:
    from .validation import validate

    root = (args.root or find_root()).resolve()
    problems = validate(root)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"validate: {len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print("validate: all articles, snippets, modules and tests are in order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
