"""Fast unit tests of the MkDocs side of spaces_build (no site is built): the command line, the
plugins' configuration, the mkdocs-jupyter adapter, the Markdown extensions by name."""
from __future__ import annotations

import json
import types
from pathlib import Path

import markdown
import pytest

from spaces_build import cli, jupyter
from spaces_build.config import Options
from spaces_build.plugin import SpacesConfig, SpacesPlugin

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", ["build", "serve", "validate", "new", "check-reproducible"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: spaces {command}")
    if command == "build":
        assert "--execute-only" in out and "--shard K/N" in out and "--no-preload" in out


def test_flags_override_the_plugin_options_of_mkdocs_yml(tmp_path):
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\nplugins:\n  - search\n  - spaces:\n      jobs: 3\n      timeout: 10\n", encoding="utf-8")
    entries = cli.plugin_entries(tmp_path / "mkdocs.yml", {"device": "cpu", "timeout": 5.0})
    assert entries == {"search": {}, "spaces": {"jobs": 3, "timeout": 5.0, "device": "cpu"}}
    assert list(entries) == ["search", "spaces"]  # in the order of mkdocs.yml
    (tmp_path / "none.yml").write_text("site_name: t\nplugins:\n  - search\n", encoding="utf-8")
    with pytest.raises(Exception, match="no 'spaces' plugin"):
        cli.plugin_entries(tmp_path / "none.yml", {"jobs": 1})


def test_plugin_schema_defaults_are_the_options_defaults():
    plugin = SpacesPlugin()
    plugin.load_config({})
    options = plugin.options()
    assert (options.jobs, options.device, options.timeout, options.keep_going) == \
        (Options().jobs, Options().device, Options().timeout, Options().keep_going)
    errors, _ = SpacesPlugin().load_config({"device": "tpu"})
    assert errors  # the schema refuses what Options refuses
    assert {name for name, _ in SpacesConfig._schema} >= {"jobs", "device", "timeout", "keep_going", "validation"}


def test_the_real_mkdocs_yml_registers_plugins_not_hooks():
    config = cli.read_yaml(REPO / "mkdocs.yml")
    names = [p if isinstance(p, str) else next(iter(p)) for p in config["plugins"]]
    assert "spaces" in names and "spaces-site" in names and "hooks" not in config


def test_validate_command_lists_problems(tmp_path, capsys):
    assert cli.main(["validate", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "taxonomy.yml:1: file is missing" in err and "problem(s) found" in err


# --------------------------------------------------------------------------------------------------
# mkdocs-jupyter adapter


def _page(ids):
    items = [types.SimpleNamespace(id=i, children=[]) for i in ids]
    return types.SimpleNamespace(url="notebooks/demo/", toc=items)


def test_slim_page_shares_the_stylesheet_and_drops_foreign_scripts():
    css = ".jp-Cell { color: red }\n" * 2000
    html = (f'<style type="text/css">{css}</style><script src=""></script>'
            '<script type="text/x-mathjax-config">MathJax.Hub.Config({})</script>'
            '<script type="module">import mermaid from "https://cdnjs.cloudflare.com/mermaid.js"</script>'
            '<h1 id="">标题<a class="anchor-link" href="#">¶</a></h1><p>kept</p>')
    sheets: dict[str, str] = {}
    out = jupyter.slim_page(html, _page(["_1"]), sheets)
    (uri, kept), = sheets.items()
    assert kept == css and uri.startswith("assets/stylesheets/jupyter-")
    assert f'<link rel="stylesheet" href="../../{uri}">' in out
    assert "<script" not in out and "<p>kept</p>" in out
    assert '<h1 id="_1">标题<a class="anchor-link" href="#_1">' in out  # the table of contents' id


def test_slim_page_links_known_figures_and_keeps_unknown_ones_inline():
    import base64
    import hashlib

    known, unknown = b"<svg>known</svg>", b"<svg>other</svg>"
    def img(data):
        return f'<img alt="" src="data:image/svg+xml;base64,{base64.b64encode(data).decode()}">'
    html = f'<div class="jupyter-wrapper">{img(known)}<p>x</p>{img(unknown)}</div>'
    figures = {hashlib.sha256(known).hexdigest(): "snippet-outputs/demo/hello-1.svg"}
    out = jupyter.slim_page(html, _page([]), {}, figures)
    assert '<img alt="" src="../../snippet-outputs/demo/hello-1.svg">' in out  # the article's own file
    assert img(unknown) in out and img(known) not in out
    assert jupyter.slim_page(html, _page([]), {}) == html  # no figures known: nothing changes


def test_slim_page_gives_each_page_its_own_relative_stylesheet_link():
    css = ".jp-Cell { color: red }\n" * 2000
    html = f'<style type="text/css">{css}</style><div class="jupyter-wrapper"><p>body</p></div>'
    deep = types.SimpleNamespace(url="notebooks/a/b/", toc=[])
    for page, prefix in ((_page([]), "../../"), (deep, "../../../"), (_page([]), "../../")):  # the head is memoised
        sheets: dict[str, str] = {}
        out = jupyter.slim_page(html, page, sheets)
        (uri, kept), = sheets.items()
        assert kept == css and out == f'<link rel="stylesheet" href="{prefix}{uri}"><div class="jupyter-wrapper"><p>body</p></div>'


def test_anchors_left_alone_when_the_counts_differ():
    html = '<h2 id="">a<a class="anchor-link" href="#">¶</a></h2>'
    assert jupyter.align_anchors(html, _page(["x", "y"])) == html


def test_torn_render_cache_entries_are_dropped(tmp_path):
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps({"content": "x" * 10000, "title": "t"}))
    torn = tmp_path / "torn.json"
    torn.write_text(whole.read_text()[:5000])
    plugin = types.SimpleNamespace(config={"cache": True, "cache_dir": str(tmp_path)})
    config = types.SimpleNamespace(plugins={"mkdocs-jupyter": plugin})
    jupyter.drop_torn_cache(config)
    assert whole.exists() and not torn.exists()


# --------------------------------------------------------------------------------------------------
# Markdown extensions by name (as mkdocs.yml or another generator lists them)


def test_pseudotags_extension_by_name():
    out = markdown.markdown("直到出现<eos>为止，<b>粗</b>", extensions=["spaces_build.pseudotags"])
    assert "&lt;eos&gt;" in out and "<b>粗</b>" in out


def test_embed_extension_by_name_without_outputs_is_an_error(tmp_path):
    from spaces_build.embed import MissingOutput

    (tmp_path / "snippets/a").mkdir(parents=True)
    (tmp_path / "snippets/a/x.py").write_text("print(1)\n")
    text = '```python\n--8<-- "snippets/a/x.py"\n```\n'
    with pytest.raises(MissingOutput, match="spaces build --execute-only"):
        markdown.markdown(text, extensions=["pymdownx.superfences", "spaces_build.embed"],
                          extension_configs={"spaces_build.embed": {"root": str(tmp_path)}})
    assert "snippet-output" not in markdown.markdown("no includes here", extensions=["spaces_build.embed"])


def test_embed_extension_asks_the_source_it_is_given():
    from spaces_build.embed import EmbedOutputsExtension

    class Source:
        def output_html(self, rel):
            return f'<div class="snippet-output">{rel}</div>' if rel.endswith("a.py") else None

    text = '```python\n--8<-- "snippets/s/a.py"\n```\n\n```python\n--8<-- "snippets/s/b.py"\n```\n'
    out = markdown.markdown(text, extensions=["pymdownx.superfences", EmbedOutputsExtension(source=Source())])
    assert out.count('class="snippet-output"') == 1 and '<div class="snippet-output">snippets/s/a.py</div>' in out
