/* Intervention page (issue #21): one clock for every camera of the intervention.
 *
 * The shared clock counts seconds from the intervention's start (the earliest recording, camera
 * corrections applied). Each player shows its recording at (clock − its offset); outside its span
 * it waits, paused, on its first or last frame. The map draws each camera's GPS track and moves a
 * marker with the clock. Without JavaScript the page still shows the timeline, the table and the
 * forms (motif, time correction): only the synchronisation needs it.
 */
(function () {
  "use strict";
  var node = document.getElementById("iv-data");
  if (!node) return;
  var data = JSON.parse(node.textContent);
  var span = data.span || 1;
  var startS = data.start ? Date.parse(data.start) / 1000 : null;
  var slider = document.getElementById("iv-clock");
  var label = document.getElementById("iv-clock-label");
  var cursor = document.getElementById("iv-cursor");
  var playButton = document.getElementById("iv-play");
  var videos = Array.prototype.slice.call(document.querySelectorAll("#iv-players video"));
  var COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989"];
  var t = 0, playing = false, lastTick = null, markers = [];

  function clamp(x, lo, hi) { return Math.min(Math.max(x, lo), hi); }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function clockText(seconds) {
    if (startS === null) return "—";
    var d = new Date((startS + seconds) * 1000);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." +
      String(Math.floor(d.getMilliseconds() / 100));
  }
  function offsetOf(v) { return parseFloat(v.dataset.offset) || 0; }
  function durationOf(v) {
    var d = parseFloat(v.dataset.duration);
    return isFinite(v.duration) && v.duration > 0 ? v.duration : (d || 0);
  }

  // Put one player where the clock says; ``exact`` after a seek or a pause, else only on drift.
  function place(v, exact) {
    var local = t - offsetOf(v), d = durationOf(v);
    var inside = local >= 0 && local < d;
    var target = clamp(local, 0, Math.max(d - 0.001, 0));
    var figure = v.closest("figure");
    if (figure) figure.classList.toggle("iv-idle", !inside);
    var tolerance = exact || !playing ? 0.001 : 0.1;
    if (Math.abs(v.currentTime - target) > tolerance) {
      try { v.currentTime = target; } catch (e) { /* no metadata yet: loadedmetadata places it */ }
    }
    if (playing && inside && v.paused) { var p = v.play(); if (p && p.catch) p.catch(function () {}); }
    if ((!playing || !inside) && !v.paused) v.pause();
  }

  function show() {
    if (slider) slider.value = t.toFixed(2);
    if (label) label.textContent = clockText(t);
    if (cursor) { cursor.hidden = false; cursor.style.left = (100 * t / span) + "%"; }
    moveMarkers();
  }

  function seek(seconds) {
    t = clamp(seconds, 0, span);
    videos.forEach(function (v) { place(v, true); });
    show();
  }

  // While playing, the clock follows the player that is inside its span with the earliest offset
  // (a video's own clock is the most precise one the page has); the others follow the clock.
  function tick(now) {
    if (!playing) return;
    var leader = null;
    videos.forEach(function (v) {
      var local = t - offsetOf(v);
      if (!v.paused && !v.seeking && local >= 0 && local < durationOf(v) && leader === null) leader = v;
    });
    if (leader) t = leader.currentTime + offsetOf(leader);
    else if (lastTick !== null) t += (now - lastTick) / 1000;
    lastTick = now;
    if (t >= span) { t = span; pause(); }
    videos.forEach(function (v) { if (v !== leader) place(v, false); });
    show();
    if (playing) window.requestAnimationFrame(tick);
  }

  function play() {
    if (playing) return;
    playing = true; lastTick = null;
    videos.forEach(function (v) { place(v, true); });
    if (playButton) playButton.textContent = "Pause";
    window.requestAnimationFrame(tick);
  }

  function pause() {
    playing = false;
    videos.forEach(function (v) { v.pause(); });
    videos.forEach(function (v) { place(v, true); });
    if (playButton) playButton.textContent = "Lecture";
    show();
  }

  if (slider) {
    slider.max = span.toFixed(2);
    slider.addEventListener("input", function () { seek(parseFloat(slider.value) || 0); });
  }
  if (playButton && videos.length) {
    playButton.hidden = false;
    playButton.addEventListener("click", function () { if (playing) pause(); else play(); });
  }
  videos.forEach(function (v) {
    v.addEventListener("loadedmetadata", function () { place(v, true); });
  });
  var lanes = document.querySelectorAll(".iv-lane");
  Array.prototype.forEach.call(lanes, function (lane) {
    lane.addEventListener("click", function (e) {
      if (e.target.closest("a")) return;
      var box = lane.getBoundingClientRect();
      seek(span * (e.clientX - box.left) / box.width);
    });
  });

  // --- Map: tracks and a marker per camera moving with the clock --------------------------------
  function pointsOf(r) {
    var pts = (r.track || []).filter(function (p) { return p && p.length >= 2 && isFinite(p[0]) && isFinite(p[1]); });
    if (!pts.length && r.location) pts = [[r.location[0], r.location[1]]];
    return pts;
  }
  // Where the camera was at the clock's time: interpolated along its track (times on the camera's
  // clock, so its correction is added), its first or last point outside the track's span.
  function positionAt(r, pts) {
    if (pts.length === 1 || pts[0].length < 3 || startS === null) return [pts[0][0], pts[0][1]];
    var when = startS + t - (r.correction || 0);
    if (when <= pts[0][2]) return [pts[0][0], pts[0][1]];
    for (var i = 1; i < pts.length; i++) {
      if (when <= pts[i][2]) {
        var a = pts[i - 1], b = pts[i], f = (when - a[2]) / ((b[2] - a[2]) || 1);
        return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])];
      }
    }
    var last = pts[pts.length - 1];
    return [last[0], last[1]];
  }
  function moveMarkers() {
    markers.forEach(function (m) { m.marker.setLatLng(positionAt(m.recording, m.points)); });
  }

  var mapNode = document.getElementById("iv-map");
  if (mapNode && window.L && window.TemoinMaps) {
    var located = data.recordings.map(function (r) { return {recording: r, points: pointsOf(r)}; })
      .filter(function (x) { return x.points.length; });
    if (!located.length) {
      mapNode.textContent = "Aucune position GPS enregistrée par ces caméras.";
      mapNode.classList.add("iv-map-empty");
    } else {
      var map = window.L.map(mapNode, {preferCanvas: false});
      // Tiles are a background only (maps/background.js): when none is configured or they cannot
      // load, the tracks, markers and scale below are still drawn.
      window.TemoinMaps.background(map, data);
      var bounds = [];
      var cameras = {};
      located.forEach(function (x) {
        var serial = x.recording.camera;
        if (!(serial in cameras)) cameras[serial] = COLOURS[Object.keys(cameras).length % COLOURS.length];
        var colour = cameras[serial];
        var latlngs = x.points.map(function (p) { return [p[0], p[1]]; });
        bounds = bounds.concat(latlngs);
        if (latlngs.length > 1) {
          window.L.polyline(latlngs, {color: colour, weight: 4, opacity: 0.8, className: "iv-track"})
            .bindTooltip(serial).addTo(map);
        }
        var marker = window.L.circleMarker(latlngs[0], {radius: 8, color: "#fff", weight: 2, fillColor: colour,
                                                        fillOpacity: 1, className: "iv-marker"})
          .bindTooltip(serial + " · n° " + x.recording.id).addTo(map);
        markers.push({marker: marker, recording: x.recording, points: x.points});
      });
      map.fitBounds(bounds, {padding: [24, 24], maxZoom: 18});
    }
  }

  window.temoinIntervention = {
    seek: seek, play: play, pause: pause,
    time: function () { return t; },
    videos: videos,
    markers: function () { return markers.map(function (m) { var p = m.marker.getLatLng(); return [p.lat, p.lng]; }); }
  };
  show();
})();
