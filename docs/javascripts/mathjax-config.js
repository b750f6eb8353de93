// MathJax 3 (served from this site, never a CDN). Notes are typeset by pymdownx.arithmatex,
// which wraps math in .arithmatex with \( \) and \[ \] delimiters; lab pages come from
// notebooks whose markdown cells keep raw $...$ and $$...$$, inside .jp-MarkdownOutput.
// Only those two kinds of element are processed, so a "$500" in a paper title stays text:
// everything under the page containers is ignored except those classes and their children.
// (An ignore pattern that matches the empty class would also silence the <p> children of a
// notebook cell, so the pattern names the containers instead.)
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams"
  },
  options: {
    ignoreHtmlClass: "md-container|md-header|md-search",
    processHtmlClass: "arithmatex|jp-MarkdownOutput|jp-RenderedMarkdown",
    // formulas keep their context menu (right click) but leave the keyboard's tab order:
    // otherwise a note's dozens of formulas stand between a reader and its links
    menuOptions: { settings: { inTabOrder: false } }
  },
  svg: { fontCache: "global" },
  startup: {
    typeset: false,
    ready: () => {
      MathJax.startup.defaultReady();
      // material's instant navigation swaps page content: typeset each new page
      if (window.document$) {
        window.document$.subscribe(() => {
          const out = MathJax.startup.output;
          if (out.clearCache) out.clearCache();
          MathJax.typesetClear();
          MathJax.texReset();
          MathJax.typesetPromise();
        });
      } else {
        MathJax.typesetPromise();
      }
    }
  }
};
