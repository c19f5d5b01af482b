(function () {
  "use strict";
  var common = window.tmsnetViewerCommon;
  var fmt = common.fmt, addRow = common.addRow;
  async function init(root) {
    var cfg = common.begin(root);
    if (!cfg) { return; }
    var canvas = root.querySelector("canvas");
    var nv = new niivue.Niivue({
      backColor: [1, 1, 1, 1], show3Dcrosshair: true, isColorbar: true, logLevel: "error",
      multiplanarShowRender: 1, dragAndDropEnabled: false, crosshairColor: [0.1, 0.1, 0.1, 0.9],
      crosshairWidth: 1
    });
    await nv.attachToCanvas(canvas);
    Object.keys(cfg.colormaps).forEach(function (key) { nv.addColormap(key, cfg.colormaps[key]); });
    var images = [];
    for (var i = 0; i < cfg.layers.length; i++) {
      var layer = cfg.layers[i];
      var img = await niivue.NVImage.loadFromBase64({
        // NiiVue picks the reader from the file extension of the name.
        base64: layer.data, name: "layer" + i + ".nii.gz", colormap: layer.colormap, opacity: layer.opacity,
        cal_min: layer.cal_min, cal_max: layer.cal_max, colormapNegative: layer.colormap_negative || "",
        colorbarVisible: !!layer.colorbar
      });
      if (layer.label_colormap) { img.setColormapLabel(layer.label_colormap); }
      images.push(img);
    }
    // One GPU upload for all layers (addVolume per layer would redo every layer, and
    // the 3D gradients of the anatomy, once per added layer). Same bookkeeping as
    // NiiVue's own addVolume/setVolume.
    nv.volumes = images;
    nv.back = images[0];
    nv.overlays = images.slice(1);
    nv.updateGLVolume();
    nv.setSliceType(nv.sliceTypeMultiplanar);
    var info = root.querySelector(".viewer-info");
    function show(loc) {
      var point = null;
      var dl = document.createElement("dl");
      var mm = loc.mm;
      addRow(dl, "crosshair (mm)",
             [mm[0], mm[1], mm[2]].map(function (v) { return v.toFixed(1); }).join(", "));
      cfg.layers.forEach(function (layer, index) {
        var value = loc.values[index] ? loc.values[index].value : NaN;
        if (layer.role === "points") {
          var label = Math.round(value);
          if (label > 0 && label <= cfg.points.length) { point = cfg.points[label - 1]; }
        } else if (layer.role === "map") {
          addRow(dl, layer.name + (layer.units ? " (" + layer.units + ")" : "") + " here", fmt(value));
        } else if (layer.role === "mask") {
          addRow(dl, "in " + layer.name, value > 0.5 ? "yes" : "no");
        }
      });
      info.textContent = "";
      var head = document.createElement("strong");
      head.className = "viewer-point-name";
      head.textContent = point ? point.label : "No point under the crosshair";
      info.appendChild(head);
      if (point) {
        root.dataset.selected = point.label;
        addRow(dl, "position (mm)", point.xyz_mm.map(function (v) { return v.toFixed(1); }).join(", "));
        Object.keys(point.values).forEach(function (key) { addRow(dl, key, fmt(point.values[key])); });
      } else {
        root.dataset.selected = "";
      }
      info.appendChild(dl);
    }
    nv.onLocationChange = show;
    function goTo(index) {
      var p = cfg.points[index].xyz_mm;
      nv.scene.crosshairPos = nv.mm2frac([p[0], p[1], p[2]]);
      nv.drawScene();
      nv.createOnLocationChange();
    }
    root.querySelectorAll("button.viewer-goto").forEach(function (button) {
      button.disabled = false;
      button.addEventListener("click", function () { goTo(Number(button.dataset.point)); });
    });
    var slider = root.querySelector("input.viewer-threshold");
    var mapIndex = cfg.layers.findIndex(function (l) { return l.role === "map"; });
    if (slider && mapIndex >= 0) {
      var out = root.querySelector("output.viewer-threshold-value");
      slider.disabled = false;
      slider.addEventListener("input", function () {
        var t = Number(slider.value);
        nv.volumes[mapIndex].cal_min = t;
        out.textContent = t.toFixed(2);
        nv.updateGLVolume();
      });
    }
    root.querySelectorAll("input.viewer-layer").forEach(function (box) {
      var index = Number(box.dataset.layer);
      box.disabled = false;
      box.addEventListener("change", function () {
        nv.setOpacity(index, box.checked ? cfg.layers[index].opacity : 0);
      });
    });
    root.querySelectorAll("button.viewer-view").forEach(function (button) {
      button.disabled = false;
      button.addEventListener("click", function () {
        nv.setSliceType(button.dataset.view === "render" ? nv.sliceTypeRender : nv.sliceTypeMultiplanar);
      });
    });
    if (cfg.points.length) { goTo(0); } else { nv.createOnLocationChange(); }
    common.ready(root, "Click in the slices (or a Show button) to read values; " +
      "drag in the 3D view to rotate.");
  }
  // Surface viewers (.tmsnet-surface-viewer) are started by surface_viewer.js.
  common.start(".tmsnet-viewer:not(.tmsnet-surface-viewer)", init);
})();
