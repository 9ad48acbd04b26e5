// Search results without jieba's zero-width separators.
//
// The search index keeps U+200B between the words jieba found (Material's search splits on them:
// mkdocs.yml, search "separator"), so the titles and snippets the search worker returns carry them
// too, and copying a result would copy them. They are removed from the displayed results only, as
// Material inserts them; the index itself is untouched. No other effect, no request.
(function () {
  "use strict";
  var ZWSP = /\u200b/g;

  function clean(root) {
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    var node;
    while ((node = walker.nextNode())) {
      if (node.nodeValue.indexOf("\u200b") !== -1) node.nodeValue = node.nodeValue.replace(ZWSP, "");
    }
  }

  function watch() {
    var results = document.querySelector(".md-search-result");
    if (!results || results.dataset.spacesClean) return;
    results.dataset.spacesClean = "";
    clean(results);
    new MutationObserver(function (mutations) {
      for (var i = 0; i < mutations.length; i++) {
        var m = mutations[i];
        if (m.type === "characterData") {
          if (m.target.nodeValue.indexOf("\u200b") !== -1) m.target.nodeValue = m.target.nodeValue.replace(ZWSP, "");
        } else {
          for (var j = 0; j < m.addedNodes.length; j++) clean(m.addedNodes[j]);
        }
      }
    }).observe(results, { childList: true, subtree: true, characterData: true });
  }

  // the search box is part of the header, which instant navigation keeps: one observer suffices
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch);
  else watch();
})();
