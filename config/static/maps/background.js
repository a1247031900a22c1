/* Témoin: what every map's background is (recording, intervention and access-request pages).
 *
 * TemoinMaps.background(map, data) adds the metric scale and, when a tile source is configured
 * (data.tiles: a Leaflet URL template, TEMOIN_MAP_TILES; data.attribution), its tiles. The tiles are a
 * background only: with none configured, or when they fail to load (no network, tile server down,
 * blocked), the tracks, markers, circles and scale stay as they are and a short note says so in the
 * attribution corner. The note's French text comes from the map element (data-tiles-failed,
 * data-no-tiles), translated by the template.
 */
(function () {
  "use strict";

  function text(s) {
    var span = document.createElement("span");
    span.textContent = s || "";
    return span.innerHTML;
  }

  function background(map, data) {
    var L = window.L;
    var node = map.getContainer();
    L.control.scale({metric: true, imperial: false, maxWidth: 160}).addTo(map);
    if (!data.tiles) {
      node.classList.add("map-no-tiles");
      map.attributionControl.addAttribution(text(node.dataset.noTiles || "Sans fond de carte"));
      return null;
    }
    var layer = L.tileLayer(data.tiles, {attribution: data.attribution || "", maxZoom: 19});
    var failed = false;
    layer.on("tileerror", function () {
      if (failed) return;
      failed = true;
      node.classList.add("map-tiles-failed");
      map.attributionControl.addAttribution(text(node.dataset.tilesFailed || "Fond de carte indisponible"));
    });
    layer.addTo(map);
    return layer;
  }

  window.TemoinMaps = {background: background};
})();
