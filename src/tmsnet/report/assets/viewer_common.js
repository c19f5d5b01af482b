// What the volume viewer (viewer.js) and the surface viewer (surface_viewer.js) share; the
// report inlines it once, before them.
window.tmsnetViewerCommon = (function () {
  "use strict";
  function hasWebGL2() {
    try { return !!document.createElement("canvas").getContext("webgl2"); } catch (e) { return false; }
  }
  function fmt(v) {
    if (typeof v === "number") { return Number.isInteger(v) ? String(v) : v.toFixed(3); }
    if (v === null || v === undefined) { return "\u2013"; }
    return String(v);
  }
  function addRow(dl, key, value) {
    var dt = document.createElement("dt"); dt.textContent = key;
    var dd = document.createElement("dd"); dd.textContent = value;
    dl.appendChild(dt); dl.appendChild(dd);
  }
  // True (and the viewer marked "unsupported") when NiiVue or WebGL2 is missing.
  function unsupported(root) {
    if (window.niivue && hasWebGL2()) { return false; }
    root.dataset.state = "unsupported";
    root.querySelector(".viewer-status").textContent = "The interactive viewer needs WebGL2, " +
      "which this browser does not provide; the static images below show the same data.";
    return true;
  }
  // The viewer's config, its live part shown; null (static images only) without WebGL2.
  function begin(root) {
    if (unsupported(root)) { return null; }
    root.querySelector(".viewer-live").hidden = false;
    return JSON.parse(document.getElementById(root.dataset.config).textContent);
  }
  // Mark a viewer as started (the browser tests wait for data-state "ready").
  function ready(root, message) {
    root.classList.add("viewer-ready");
    root.dataset.readyMs = String(Math.round(performance.now()));
    root.dataset.state = "ready";
    root.querySelector(".viewer-status").textContent = message;
  }
  // Run init(root) on every element matching selector; a failure shows the static images.
  function start(selector, init) {
    document.querySelectorAll(selector).forEach(function (root) {
      init(root).catch(function (err) {
        root.dataset.state = "error";
        root.classList.remove("viewer-ready");
        var live = root.querySelector(".viewer-live");
        if (live) { live.hidden = true; }
        root.querySelector(".viewer-status").textContent = "The interactive viewer could not " +
          "start (" + err + "); the static images below show the same data.";
        console.error("tmsnet viewer:", err);
      });
    });
  }
  return { hasWebGL2: hasWebGL2, fmt: fmt, addRow: addRow, unsupported: unsupported, begin: begin, ready: ready,
           start: start };
})();
