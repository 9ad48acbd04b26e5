// MathJax 3 configuration of the archive. Loaded before assets/vendor/mathjax/tex-chtml-full.js,
// which the build serves from the site itself (see scripts/hooks/site.py): no CDN, no other host.
//
// - pymdownx.arithmatex (generic) wraps every formula in an element of class "arithmatex" with
//   \( \) / \[ \] delimiters (or a bare \begin{equation} environment): only those are typeset.
// - tags: "ams" numbers equation environments and resolves \label / \eqref.
// - The full bundle defines every macro up front (\boldsymbol, \mathscr, ...): nothing is autoloaded
//   after the first typeset, so the first page shown never has undefined (red) macros.
// - Material's instant navigation swaps the page without reloading scripts: each new page is
//   typeset after clearing MathJax's state (labels, equation numbers) of the previous one. On a page
//   of excerpts each article is typeset on its own, so its numbers and labels stay its own.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams",
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
  startup: {
    typeset: false,
    ready() {
      MathJax.startup.defaultReady();
      window.spacesMath.ready = true;
      typesetPage();
    },
  },
};

// runs counts the finished typesetting passes (the browser tests wait on it)
window.spacesMath = { ready: false, runs: 0 };

// formulas of the current page that no typesetting pass has looked at yet
function pendingMath() {
  return document.querySelectorAll(".arithmatex:not([data-typeset])");
}

function typesetPage() {
  MathJax.startup.promise = MathJax.startup.promise
    .then(async () => {
      // the first page load can be announced twice (MathJax ready, then document$): once is enough
      if (pendingMath().length === 0) return;
      MathJax.startup.output.clearCache();
      MathJax.typesetClear();
      const scopes = Array.from(document.querySelectorAll("article.md-post--excerpt"));
      if (scopes.length === 0) {
        MathJax.texReset();
        await MathJax.typesetPromise();
      } else {
        for (const scope of scopes) {
          MathJax.texReset();
          await MathJax.typesetPromise([scope]);
        }
      }
      for (const el of pendingMath()) el.dataset.typeset = "";
    })
    .catch((err) => console.error("MathJax typesetting failed:", err))
    .then(() => {
      window.spacesMath.runs += 1;
    });
  return MathJax.startup.promise;
}

// Material's observable of page loads (first load and every instant navigation)
document$.subscribe(() => {
  if (window.spacesMath.ready) typesetPage();
});
