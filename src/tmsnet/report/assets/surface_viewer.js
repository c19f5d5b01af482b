(function () {
  "use strict";
  // The surface viewer of tmsnet reports: NiiVue meshes from the inline GIFTI text of the
  // viewer's JSON config (tmsnet.report.viewer.surface_viewer_html); nothing is fetched.
  var common = window.tmsnetViewerCommon;
  var fmt = common.fmt, addRow = common.addRow;
  function bytes(text) { return new TextEncoder().encode(text).buffer; }
  async function loadMesh(nv, entry) {
    var mesh = await niivue.NVMesh.readMesh(bytes(entry.gifti), entry.name + ".gii", nv.gl, 1,
                                            new Uint8Array(entry.color), true);
    for (var i = 0; i < entry.layers.length; i++) {
      var spec = entry.layers[i];
      // NiiVue picks the reader from the file extension of the name.
      var layer = await niivue.NVMeshLoaders.readLayer(
        "layer" + i + ".gii", bytes(spec.gifti), mesh, spec.opacity, spec.colormap,
        spec.colormap_negative || "winter", !!spec.colormap_negative, spec.cal_min, spec.cal_max);
      layer.colorbarVisible = !!spec.colorbar;
      if (spec.role === "background") { layer.isTransparentBelowCalMin = false; }
      mesh.layers.push(layer);
    }
    mesh.updateMesh(nv.gl);
    nv.addMesh(mesh);
    return mesh;
  }
  async function init(root) {
    var cfg = common.begin(root);
    if (!cfg) { return; }
    var nv = new niivue.Niivue({
      backColor: [1, 1, 1, 1], show3Dcrosshair: false, isColorbar: true, logLevel: "error",
      dragAndDropEnabled: false, isDepthPickMesh: true, isOrientCube: true
    });
    await nv.attachToCanvas(root.querySelector("canvas"));
    root.tmsnetViewer = nv;  // for the browser tests
    var meshes = [];
    for (var i = 0; i < cfg.meshes.length; i++) { meshes.push(await loadMesh(nv, cfg.meshes[i])); }
    nv.setSliceType(nv.sliceTypeRender);
    var info = root.querySelector(".viewer-info");
    function nearest(mm) {
      // The vertex of a hemisphere nearest to a point (mm, displayed coordinates).
      var best = null;
      cfg.meshes.forEach(function (entry, index) {
        if (entry.role !== "hemisphere" || !meshes[index].visible) { return; }
        var found = nv.indexNearestXYZmm(meshes[index].id, mm[0], mm[1], mm[2]);
        if (!isFinite(found[1]) || (best && best.distance <= found[1])) { return; }
        best = { entry: entry, mesh: meshes[index], vertex: found[0], distance: found[1] };
      });
      return best;
    }
    function pointAt(mm) {
      for (var k = 0; k < cfg.points.length; k++) {
        var d = cfg.points[k].display_mm;
        if (Math.hypot(mm[0] - d[0], mm[1] - d[1], mm[2] - d[2]) <= cfg.point_radius_mm + 0.5) { return k; }
      }
      return -1;
    }
    function show(mm, pointIndex) {
      // The read-out: the point at mm (if any), and the map at the nearest vertex.
      var dl = document.createElement("dl");
      var point = pointIndex >= 0 ? cfg.points[pointIndex] : null;
      var hit = mm ? nearest(mm) : null;
      info.textContent = "";
      var head = document.createElement("strong");
      head.className = "viewer-point-name";
      head.textContent = point ? point.label : "No point here";
      info.appendChild(head);
      if (hit && hit.distance < 3) {
        root.dataset.vertex = hit.entry.hemisphere + " " + hit.vertex;
        addRow(dl, "vertex", root.dataset.vertex);
        var values = hit.mesh.layers[hit.mesh.layers.length - 1].values;
        addRow(dl, cfg.map.name + (cfg.map.units ? " (" + cfg.map.units + ")" : "") + " here",
               fmt(values[hit.vertex]));
      } else {
        root.dataset.vertex = "";
      }
      if (point) {
        addRow(dl, "position (mm)", point.xyz_mm.map(function (v) { return v.toFixed(1); }).join(", "));
        Object.keys(point.values).forEach(function (key) { addRow(dl, key, fmt(point.values[key])); });
      }
      root.dataset.selected = point ? point.label : "";
      info.appendChild(dl);
    }
    nv.onLocationChange = function (loc) {
      if (loc && loc.mm) { show(loc.mm, pointAt(loc.mm)); }
    };
    function face(p) {
      // Turn the camera so that the point faces it (NiiVue: azimuth 0 looks from behind,
      // 90 from the left, 180 from the front, 270 from the right; elevation 90 from above).
      var c = nv.pivot3D || [0, 0, 0];
      var d = [p[0] - c[0], p[1] - c[1], p[2] - c[2]];
      var n = Math.hypot(d[0], d[1], d[2]) || 1;
      var azimuth = Math.atan2(-d[0], -d[1]) * 180 / Math.PI;
      var elevation = Math.asin(d[2] / n) * 180 / Math.PI;
      nv.setRenderAzimuthElevation((azimuth + 360) % 360, elevation);
    }
    root.querySelectorAll("button.viewer-goto").forEach(function (button) {
      button.disabled = false;
      button.addEventListener("click", function () {
        var point = cfg.points[Number(button.dataset.point)];
        face(point.display_mm);
        show(point.display_mm, Number(button.dataset.point));
      });
    });
    root.querySelectorAll("button.viewer-view").forEach(function (button) {
      button.disabled = false;
      button.addEventListener("click", function () {
        var view = cfg.views[Number(button.dataset.view)];
        nv.setRenderAzimuthElevation(view.azimuth, view.elevation);
      });
    });
    var slider = root.querySelector("input.viewer-threshold");
    if (slider) {
      var out = root.querySelector("output.viewer-threshold-value");
      slider.disabled = false;
      slider.addEventListener("input", async function () {
        var t = Number(slider.value);
        out.textContent = t.toFixed(2);
        for (var k = 0; k < cfg.meshes.length; k++) {
          if (cfg.meshes[k].role !== "hemisphere") { continue; }
          await nv.setMeshLayerProperty(meshes[k].id, cfg.meshes[k].layers.length - 1, "cal_min", t);
        }
      });
    }
    root.querySelectorAll("input.viewer-mesh").forEach(function (box) {
      box.disabled = false;
      box.addEventListener("change", function () {
        cfg.meshes.forEach(function (entry, index) {
          var mine = box.dataset.mesh === "points" ? entry.role === "point"
            : String(index) === box.dataset.mesh;
          if (mine) { nv.setMeshProperty(meshes[index].id, "visible", box.checked); }
        });
      });
    });
    if (cfg.points.length) { face(cfg.points[0].display_mm); show(cfg.points[0].display_mm, 0); }
    else { nv.setRenderAzimuthElevation(cfg.views[0].azimuth, cfg.views[0].elevation); show(null, -1); }
    common.ready(root, "Drag to rotate, scroll to zoom; double-click the surface to read the " +
      "map at the nearest vertex (or a target's values on its sphere).");
  }
  common.start(".tmsnet-surface-viewer", init);
})();
