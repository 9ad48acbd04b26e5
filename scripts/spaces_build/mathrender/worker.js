// MathJax 3 in node, for spaces_build.mathrender (see __init__.py there).
//
// One long-lived process per build: Python writes one JSON request per line on stdin and reads one
// JSON answer per line on stdout. A request holds the formulas of ONE page, as the HTML content of
// the .arithmatex elements pymdownx.arithmatex writes ("\(x&lt;y\)", "\[...\]"). Each page is typeset
// as one MathJax document, exactly as the browser typeset the page before: AMS numbering, \label,
// \eqref (forward references included, MathJax recompiles them) and \newcommand shared by the page's
// formulas, and by nobody else (every page gets a fresh TeX input jax and a fresh SVG output jax).
//
// Usage: node worker.js MATHJAX_ES5_DIR CONFIG_JSON
//   request:  {"id": 1, "items": [{"tag": "span", "html": "\\(x\\)"}, ...]}
//   answer:   {"id": 1, "items": ["<mjx-container ...>", ...], "defs": "<svg ...>", "errors": [...]}
//             each error: {"index": i, "message": "..."}; {"id": 0, "ready": ..., "version": ...} first
//   {"stylesheet": true} asks for the CSS the output needs ({"id": ..., "css": "..."}).
"use strict";

const path = require("path");
const readline = require("readline");

const es5 = path.resolve(process.argv[2]);
const options = JSON.parse(process.argv[3] || "{}");

global.MathJax = {
  loader: {
    paths: { mathjax: es5 },
    require: require,
    load: ["adaptors/liteDOM", "input/tex-full", "output/svg", "a11y/assistive-mml"],
  },
  tex: Object.assign({
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams",
  }, options.tex || {}),
  svg: Object.assign({ fontCache: "global" }, options.svg || {}),
  startup: { typeset: false },
};

require(path.join(es5, "startup.js"));

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function escapeHtml(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

MathJax.startup.promise.then(() => {
  const MJ = MathJax._;
  const mathjax = MJ.mathjax.mathjax;
  const TeX = MJ.input.tex_ts.TeX;
  const SVG = MJ.output.svg_ts.SVG;
  const adaptor = MathJax.startup.adaptor;
  const texConfig = MathJax.config.tex;
  // an undefined macro is an error (the browser showed it in red, "noundefined"): the build fails
  const packages = texConfig.packages.filter((name) => name !== "noundefined");

  function newDocument(html) {
    const tex = new TeX(Object.assign({}, texConfig, { packages: packages }));
    const svg = new SVG(MathJax.config.svg);
    return mathjax.document(html, Object.assign({}, MathJax.config.options,
                                                 { InputJax: tex, OutputJax: svg }));
  }

  // the index of the formula element holding a node (-1: none)
  function hostIndex(node) {
    for (; node; node = adaptor.parent(node)) {
      if (adaptor.kind(node) === "#text" || adaptor.kind(node) === "#comment") continue;
      const value = adaptor.getAttribute(node, "data-spaces-math");
      if (value !== null && value !== undefined && value !== "") return Number(value);
    }
    return -1;
  }

  function typeset(items) {
    const body = items.map((item, i) => {
      const tag = item.tag === "div" ? "div" : "span";
      return `<${tag} class="arithmatex" data-spaces-math="${i}">${item.html}</${tag}>`;
    }).join("\n");
    const doc = newDocument(`<!DOCTYPE html><html><head></head><body>${body}</body></html>`);
    doc.render();
    const errors = [];
    const byElement = new Map();
    for (const math of doc.math) {
      const index = hostIndex(math.start.node);
      byElement.set(index, (byElement.get(index) || 0) + 1);
      const problems = [];
      math.root.walkTree((node) => {
        if (node.isKind("merror")) {
          problems.push(node.attributes.get("data-mjx-error") || "MathJax error");
        }
      });
      const mml = MathJax.startup.toMML(math.root);
      if (mml.includes("???")) problems.push("unresolved reference (\\ref or \\eqref to an unknown \\label)");
      for (const message of problems) errors.push({ index: index, message: message });
    }
    const out = [];
    let defs = "";
    for (const el of adaptor.childNodes(adaptor.body(doc.document))) {
      if (adaptor.kind(el) === "svg" && adaptor.getAttribute(el, "id") === SVG.FONTCACHEID) {
        defs = adaptor.outerHTML(el);   // the glyphs the page's formulas <use> (fontCache: global)
        continue;
      }
      const i = hostIndex(el);
      if (i < 0) continue;
      out[i] = adaptor.innerHTML(el);
      if (!byElement.get(i)) errors.push({ index: i, message: "no formula found (MathJax typeset nothing here)" });
      else if (byElement.get(i) > 1) errors.push({ index: i, message: "more than one formula in one element" });
    }
    return { items: out, defs: defs, errors: errors };
  }

  function stylesheet() {
    const doc = newDocument("<!DOCTYPE html><html><head></head><body>\\(x\\)</body></html>");
    doc.render();
    return adaptor.textContent(doc.outputJax.styleSheet(doc));
  }

  send({ id: 0, ready: true, version: mathjax.version, packages: packages });
  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  lines.on("line", (line) => {
    if (!line.trim()) return;
    let request;
    try {
      request = JSON.parse(line);
      if (request.stylesheet) {
        send({ id: request.id, css: stylesheet() });
      } else {
        send(Object.assign({ id: request.id }, typeset(request.items)));
      }
    } catch (err) {
      send({ id: request ? request.id : null, fatal: String(err && err.stack || err) });
    }
  });
}).catch((err) => {
  send({ id: 0, fatal: String(err && err.stack || err) });
  process.exit(1);
});
