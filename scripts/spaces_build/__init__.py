"""spaces_build: the build of the Spaces archive, as an installed package (``pip install -e .``).

Where things happen, one module per responsibility:

- ``config``: the build's options (:class:`~spaces_build.config.Options`), their defaults written once;
- ``project``: the repository: its root, the folders that are never sources, copying a project;
- ``parsing``: the one parser of posts: front matter (with YAML line numbers), fenced blocks and
  snippet includes, formulas;
- ``discovery``: which snippets exist and which pages include them;
- ``device``: ``--device auto`` resolved without importing torch here;
- ``cache``: the typed cache entry (:class:`~spaces_build.cache.CacheEntry`) and its content-addressed files;
- ``sandbox``: keeping snippets from writing into the repository (Landlock, else a before/after watch);
- ``executor``: running snippets, one fresh process each (:func:`~spaces_build.executor.run_process`);
- ``capture``: what a snippet printed and drew, made fit to publish (head and tail, terminal redraws, safe SVG);
- ``runner``: the script that runs inside that process (never imported by the build);
- ``engine``: one build: discover, check the cache, execute what is stale, store;
- ``render``, ``notebooks``: HTML of outputs and the run table, code pages, Jupyter notebooks;
- ``embed``: the Python-Markdown extension that puts outputs after their code (plain ``markdown.markdown()``);
- ``pseudotags``: the Python-Markdown extension that keeps ``<eos>``-like words of the prose visible;
- ``plugin``, ``site``, ``jupyter``: the MkDocs side (plugins ``spaces`` and ``spaces-site``, the adapter
  for mkdocs-jupyter);
- ``validation``, ``scaffold``, ``reproducible``: ``spaces validate``, ``spaces new``, ``spaces check-reproducible``;
- ``fidelity``: the check that every paragraph of the original texts is kept (``scripts/check_fidelity.py``);
- ``shard``, ``forkserver``: the split of execution over CI machines, the pre-imported worker (issue 14);
- ``mathrender``: formulas rendered at build time (issue 13);
- ``cli``: the ``spaces`` command.

Discovery, cache, execution and rendering import nothing from MkDocs.
"""
