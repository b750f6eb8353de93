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
      hay[i] = normalise(el.textContent + " " + el.id);
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
    var sortSel = root.querySelector("#pi-sort"), copyAll = root.querySelector("#pi-copy-all");
    var state = urlState(root, {q: q, section: sec, year: yr, venue: ven, code: hasCode,
                                authors: hasAuth, sort: sortSel});

    function apply() {
      var t0 = performance.now();
      var words = normalise(queryText(q.value)).split(" ").filter(Boolean);
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
      state.write();
    }

    // Sort: reorder the <li>s (all of them, shown or not) off the document, in one go.
    var order = items.map(function (_, i) { return i; });
    var titles = items.map(function (el) {
      var t = el.querySelector(".pi-title span");
      return (t ? t.textContent : el.id).toLowerCase();
    });
    function sortList() {
      var by = sortSel ? sortSel.value : "";
      var idx = order.slice();
      if (by === "newest") idx.sort(function (a, b) { return (years[b] || "0").localeCompare(years[a] || "0") || titles[a].localeCompare(titles[b]); });
      else if (by === "title") idx.sort(function (a, b) { return titles[a].localeCompare(titles[b]); });
      else if (by === "venue") idx.sort(function (a, b) { return venues[a].localeCompare(venues[b]) || (years[b] || "0").localeCompare(years[a] || "0"); });
      var parent = list.parentNode, next = list.nextSibling;
      parent.removeChild(list);
      for (var i = 0; i < idx.length; i++) list.appendChild(items[idx[i]]);
      parent.insertBefore(list, next);
      root.dataset.sort = by;
      state.write();
    }

    function copyShown() {
      var texts = [];
      var lis = list.children;
      for (var i = 0; i < lis.length; i++) {  // shown entries, in the order on screen
        var b = lis[i].hidden ? null : lis[i].querySelector("[data-bibtex]");
        if (b) texts.push(b.dataset.bibtex);
      }
      copyAll.dataset.count = String(texts.length);
      copyText(texts.join("\n\n") + "\n", copyAll);
    }

    function reset() {
      q.value = ""; sec.value = ""; yr.value = ""; ven.value = "";
      hasCode.checked = false; hasAuth.checked = false;
      apply();
    }

    [sec, yr, ven, hasCode, hasAuth].forEach(function (el) { el.addEventListener("change", apply); });
    q.addEventListener("input", apply);
    root.querySelector("#pi-reset").addEventListener("click", reset);
    if (sortSel) sortSel.addEventListener("change", sortList);
    if (copyAll) copyAll.addEventListener("click", copyShown);
    // The controls are the truth: the URL fills the ones still at their default (so text typed
    // before this script ran is kept), then the list follows them; again whenever the page is
    // shown from the back/forward cache or the browser restored the controls late.
    function sync() { state.read(); if (sortSel && sortSel.value !== (root.dataset.sort || "")) sortList(); apply(); }
    window.addEventListener("pageshow", sync);
    window.addEventListener("popstate", sync);
    if (document.readyState !== "complete") window.addEventListener("load", sync);
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

    // Sticky filter bar: on a wide screen all of it stays under the header; on a narrow one
    // (where it wraps to several rows) only its last row, the text filter and the count.
    var bar = root.querySelector(".pi-filters"), narrow = window.matchMedia("(max-width: 44.984375em)");
    function pin() {
      var header = document.querySelector(".md-header");
      var h = header ? header.getBoundingClientRect().height : 0;
      bar.style.top = narrow.matches ? (h - Math.max(0, q.offsetTop - 4)) + "px" : "";
    }
    window.addEventListener("resize", pin);
    pin();
    state.read();
    if (sortSel && sortSel.value) sortList();
    apply();
    reveal();
    root.dataset.piState = "ready";  // the browser tests wait for this
    root.paperIndexApply = apply;
  }

  // Text filter: "arXiv:2204.03458", an arxiv.org abs/pdf URL and the bare id are the same
  // query; "video-editing" is "video editing" (hyphens and underscores are spaces, both sides).
  function queryText(value) {
    return value
      .replace(/https?:\/\/(?:www\.|export\.)?arxiv\.org\/(?:abs|pdf|html)\/([^\s?#]+?)(?:v\d+)?(?:\.pdf)?(?=[\s?#]|$)\S*/gi, " $1 ")
      .replace(/\barxiv:\s*/gi, " ");
  }
  function normalise(text) {
    return text.toLowerCase().replace(/[-_\u2010-\u2014]+/g, " ").replace(/\s+/g, " ");
  }

  // The filters live in the URL (?q=&section=&year=&venue=&code=1&authors=1&sort=), written
  // with replaceState on every change, so a filtered view can be shared, reloaded and
  // returned to with Back.
  function urlState(root, controls) {
    var names = Object.keys(controls);
    function value(el) { return el.type === "checkbox" ? (el.checked ? "1" : "") : el.value; }
    function isDefault(el) { return el.type === "checkbox" ? !el.checked : el.value === ""; }
    return {
      read: function () {
        var params = new URLSearchParams(location.search);
        names.forEach(function (name) {
          var el = controls[name];
          if (!el || !params.has(name) || !isDefault(el)) return;
          var v = params.get(name);
          if (el.type === "checkbox") el.checked = v === "1";
          else if (el.tagName !== "SELECT" || el.querySelector('option[value="' + CSS.escape(v) + '"]')) el.value = v;
        });
      },
      write: function () {
        var params = new URLSearchParams(location.search);
        names.forEach(function (name) {
          var el = controls[name];
          if (!el) return;
          var v = value(el);
          if (v) params.set(name, v); else params.delete(name);
        });
        var search = params.toString();
        var url = location.pathname + (search ? "?" + search : "") + location.hash;
        if (url !== location.pathname + location.search + location.hash) history.replaceState(history.state, "", url);
      }
    };
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
