/* Paper index: filters and copy-BibTeX for the page made by diffusion_notes.bib.index_page.
 *
 * Speed: every entry's lowercase search text and attributes are read once at start-up into
 * plain arrays; a filter change is one pass over them that only flips the `hidden` property
 * where it changes (no re-render, no layout reads). The time of the last pass is kept in
 * root.dataset.lastFilterMs for the benchmark and the browser test.
 * Safety: BibTeX text is read from a data attribute and only ever handled as text.
 */
(function () {
  "use strict";

  function init(root) {
    if (!root || root.dataset.piReady === "1") return;
    root.dataset.piReady = "1";
    var items = Array.prototype.slice.call(root.querySelectorAll("li.pi-entry"));
    var n = items.length;
    var hay = new Array(n), sections = new Array(n), years = new Array(n), venues = new Array(n);
    var codes = new Array(n), authors = new Array(n), shown = new Array(n);
    for (var i = 0; i < n; i++) {
      var el = items[i], d = el.dataset;
      hay[i] = (el.textContent + " " + el.id).toLowerCase().replace(/\s+/g, " ");
      sections[i] = "|" + (d.sections || "") + "|";
      years[i] = d.year || "";
      venues[i] = d.venue || "";
      codes[i] = d.code === "1";
      authors[i] = d.authors === "1";
      shown[i] = !el.hidden;
    }
    var q = root.querySelector("#pi-q"), sec = root.querySelector("#pi-section");
    var yr = root.querySelector("#pi-year"), ven = root.querySelector("#pi-venue");
    var hasCode = root.querySelector("#pi-has-code"), hasAuth = root.querySelector("#pi-has-authors");
    var count = root.querySelector("#pi-count"), empty = root.querySelector(".pi-empty");
    var counters = Array.prototype.slice.call(root.querySelectorAll(".pi-n"));
    var list = root.querySelector(".pi-list");

    function apply() {
      var t0 = performance.now();
      var words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
      var s = sec.value ? "|" + sec.value + "|" : "", y = yr.value, v = ven.value;
      var c = hasCode.checked, a = hasAuth.checked, total = 0;
      var perSection = Object.create(null), changed = [];
      for (var i = 0; i < n; i++) {
        var ok = (!s || sections[i].indexOf(s) >= 0) && (!y || years[i] === y) &&
          (!v || venues[i] === v) && (!c || codes[i]) && (!a || authors[i]);
        for (var w = 0; ok && w < words.length; w++) ok = hay[i].indexOf(words[w]) >= 0;
        if (ok !== shown[i]) { changed.push(i); shown[i] = ok; }
        if (ok) {
          total++;
          var parts = sections[i].split("|");
          for (var k = 1; k < parts.length - 1; k++) perSection[parts[k]] = (perSection[parts[k]] || 0) + 1;
        }
      }
      // Toggling hundreds of attached entries one by one is slow in Chromium (~0.5 s for 800);
      // off the document it is one layout (~15 ms). Take the list out, flip, put it back.
      var parent = list.parentNode, next = list.nextSibling, detach = changed.length > 30;
      if (detach) parent.removeChild(list);
      for (var m = 0; m < changed.length; m++) items[changed[m]].hidden = !shown[changed[m]];
      if (detach) parent.insertBefore(list, next);
      count.textContent = total + " of " + n + " papers";
      empty.hidden = total !== 0;
      for (var j = 0; j < counters.length; j++) {
        counters[j].textContent = String(perSection[counters[j].dataset.section] || 0);
      }
      root.dataset.lastFilterMs = (performance.now() - t0).toFixed(2);
      root.dataset.shown = String(total);
    }

    function reset() {
      q.value = ""; sec.value = ""; yr.value = ""; ven.value = "";
      hasCode.checked = false; hasAuth.checked = false;
      apply();
    }

    [sec, yr, ven, hasCode, hasAuth].forEach(function (el) { el.addEventListener("change", apply); });
    q.addEventListener("input", apply);
    root.querySelector("#pi-reset").addEventListener("click", reset);
    root.addEventListener("click", function (ev) {
      var t = ev.target;
      if (!(t instanceof Element)) return;
      var btn = t.closest(".pi-section-btn");
      if (btn) { sec.value = btn.dataset.section; apply(); return; }
      var copy = t.closest(".pi-copy, .pi-cite-fmt");  // BibTeX, or another format (data-copy)
      if (copy) copyText(copy.dataset.copy || copy.dataset.bibtex || "", copy);
    });

    // A link to #key must show the entry even when the filters hide it.
    function reveal() {
      var id = decodeURIComponent(location.hash.slice(1));
      var el = id && document.getElementById(id);
      if (el && el.classList.contains("pi-entry") && el.hidden) { reset(); el.scrollIntoView(); }
    }
    window.addEventListener("hashchange", reveal);
    reveal();
    root.paperIndexApply = apply;
  }

  function copyText(text, button) {
    function done(ok) {
      var old = button.dataset.label || button.textContent;
      button.dataset.label = old;
      button.textContent = ok ? "Copied" : "Copy failed";
      button.dataset.copied = ok ? "1" : "0";
      setTimeout(function () { button.textContent = old; }, 1500);
    }
    function fallback() {
      var ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.style.position = "fixed"; ta.style.opacity = "0";
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(ta);
      done(ok);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  }

  function start() { init(document.getElementById("pi-root")); }
  // mkdocs-material with instant navigation swaps pages without a reload: hook its document$.
  if (typeof window.document$ !== "undefined" && window.document$.subscribe) {
    window.document$.subscribe(start);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
