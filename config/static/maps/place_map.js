/* Témoin: one map on a page (recording, access request), drawn with the bundled Leaflet
 * (config/static/vendor/leaflet, `make assets`) and the background of maps/background.js.
 *
 * Reads #place-map-data (json_script): tiles URL and attribution, a GPS track [[lat, lon, epoch], ...],
 * a location [lat, lon], a place [lat, lon] with its radius in metres, and the French labels.
 * Tiles are only a background: with no tile server (no network, sovereign deployment without tiles)
 * the track, the marker and the circle are still drawn, and no error is raised.
 */
(function () {
  "use strict";
  var node = document.getElementById("place-map");
  var dataNode = document.getElementById("place-map-data");
  if (!node || !dataNode || !window.L || !window.TemoinMaps) return;
  var data = JSON.parse(dataNode.textContent);

  function point(p) {
    if (!p || p.length < 2) return null;
    var lat = Number(p[0]), lon = Number(p[1]);
    if (p[0] === null || p[1] === null || !isFinite(lat) || !isFinite(lon)) return null;
    if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
    return [lat, lon];
  }

  var track = (data.track || []).map(point).filter(function (p) { return p; });
  var location = point(data.location) || (track.length ? track[0] : null);
  var place = point(data.place);
  if (!track.length && !location && !place) {
    node.textContent = data.empty || "";
    node.classList.add("place-map-empty");
    return;
  }

  var map = window.L.map(node);
  window.TemoinMaps.background(map, data);
  var bounds = window.L.latLngBounds([]);
  if (track.length > 1) {
    var line = window.L.polyline(track, {color: "#1d4ed8", weight: 4, opacity: 0.85, className: "map-track"})
      .bindTooltip(data.track_label || "").addTo(map);
    bounds.extend(line.getBounds());
  }
  if (location) {
    window.L.circleMarker(location, {radius: 8, color: "#fff", weight: 2, fillColor: "#b91c1c", fillOpacity: 1,
                                     className: "map-marker"}).bindTooltip(data.location_label || "").addTo(map);
    bounds.extend(location);
  }
  if (place) {
    window.L.circle(place, {radius: Number(data.radius) || 50, color: "#b45309", weight: 2,
                                       fillOpacity: 0.15, className: "map-area"})
      .bindTooltip(data.place_label || "").addTo(map);
    window.L.circleMarker(place, {radius: 6, color: "#fff", weight: 2, fillColor: "#b45309", fillOpacity: 1,
                                  className: "map-marker"}).addTo(map);
    // The circle's own getBounds needs a map view, not set yet: the square around it, computed.
    bounds.extend(window.L.latLng(place).toBounds(2 * (Number(data.radius) || 50)));
  }
  map.fitBounds(bounds, {padding: [24, 24], maxZoom: 17});
  window.temoinPlaceMap = map;
})();
