// Redaction editor: draws the frame and the boxes of every track, lets the reviewer add, move and
// remove boxes with the mouse, and writes all tracks' keyframes into the form's "boxes" field.
// The form itself is a plain POST; without JavaScript the checkboxes and mute ranges still work.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("redaction-data").textContent);
  var canvas = document.getElementById("frame-canvas");
  var ctx = canvas.getContext("2d");
  var slider = document.getElementById("frame-slider");
  var label = document.getElementById("frame-label");
  var selLabel = document.getElementById("selection-label");
  var boxesField = document.getElementById("id_boxes");
  var form = document.getElementById("review-form");
  var tracks = data.tracks.map(function (t) {
    return {number: t.number, kind: t.kind, label: t.label, keyframes: t.keyframes.slice(),
            first: t.first, last: t.last, kept: t.kept, subject: t.subject, changed: false};
  });
  var newCounter = 0;
  var frame = 0;
  var image = new Image();
  var selected = null;   // a track object
  var drag = null;       // {mode: "move"|"draw", track, start: [x, y], box}

  function keyframeIndex(track, f) {
    for (var i = 0; i < track.keyframes.length; i++) { if (track.keyframes[i][0] === f) { return i; } }
    return -1;
  }

  // Same rule as evidence/redaction/detection.py box_at: linear between keyframes, held at the ends.
  function boxAt(track, f) {
    var k = track.keyframes;
    if (!k.length || f < track.first || f > track.last) { return null; }
    if (f <= k[0][0]) { return k[0].slice(1, 5); }
    if (f >= k[k.length - 1][0]) { return k[k.length - 1].slice(1, 5); }
    for (var i = 1; i < k.length; i++) {
      if (k[i][0] >= f) {
        var a = k[i - 1], b = k[i], t = (f - a[0]) / (b[0] - a[0]);
        return [1, 2, 3, 4].map(function (j) { return Math.round(a[j] + (b[j] - a[j]) * t); });
      }
    }
    return null;
  }

  function blurred(track) { return track.kept && !track.subject; }

  function syncCheckboxes() {
    tracks.forEach(function (t) {
      if (typeof t.number !== "number") { return; }
      var kept = form.querySelector('input[name="kept_' + t.number + '"]');
      var subject = form.querySelector('input[name="subject_' + t.number + '"]');
      t.kept = kept ? kept.checked : t.kept;
      t.subject = subject ? subject.checked : false;
    });
  }

  function draw() {
    syncCheckboxes();
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (image.complete && image.naturalWidth) { ctx.drawImage(image, 0, 0, canvas.width, canvas.height); }
    ctx.lineWidth = Math.max(2, canvas.width / 320);
    ctx.font = Math.max(14, canvas.width / 50) + "px sans-serif";
    tracks.forEach(function (t) {
      var box = (drag && drag.track === t && drag.box) ? drag.box : boxAt(t, frame);
      if (!box) { return; }
      var keyed = keyframeIndex(t, frame) >= 0;
      ctx.setLineDash(keyed ? [] : [8, 6]);
      ctx.strokeStyle = !t.kept ? "#9ca3af" : (t.subject ? "#16a34a" : "#dc2626");
      if (t === selected) { ctx.strokeStyle = "#2563eb"; }
      ctx.strokeRect(box[0], box[1], box[2], box[3]);
      ctx.fillStyle = ctx.strokeStyle;
      var name = (typeof t.number === "number" ? "n° " + t.number : "nouvelle") +
        (blurred(t) ? "" : (t.subject ? " (nette)" : " (écartée)"));
      ctx.fillText(name, box[0] + 4, Math.max(16, box[1] - 6));
    });
    ctx.setLineDash([]);
    var seconds = data.fps ? (frame / data.fps) : 0;
    label.textContent = "image " + frame + " / " + (data.frameCount - 1) + " · " + seconds.toFixed(2) + " s";
    selLabel.textContent = selected ? ("Piste sélectionnée : " +
      (typeof selected.number === "number" ? "n° " + selected.number : "nouvelle")) : "Aucune piste sélectionnée";
  }

  function load(f) {
    frame = Math.max(0, Math.min(data.frameCount - 1, f));
    slider.value = frame;
    image = new Image();
    image.onload = draw;
    image.src = data.frameUrl + frame + ".jpg";
    draw();
  }

  function point(ev) {
    var r = canvas.getBoundingClientRect();
    return [Math.round((ev.clientX - r.left) * canvas.width / r.width),
            Math.round((ev.clientY - r.top) * canvas.height / r.height)];
  }

  function hit(p) {
    for (var i = tracks.length - 1; i >= 0; i--) {
      var b = boxAt(tracks[i], frame);
      if (b && p[0] >= b[0] && p[0] <= b[0] + b[2] && p[1] >= b[1] && p[1] <= b[1] + b[3]) { return tracks[i]; }
    }
    return null;
  }

  function setKeyframe(track, box) {
    var i = keyframeIndex(track, frame);
    var kf = [frame, box[0], box[1], box[2], box[3]];
    if (i >= 0) { track.keyframes[i] = kf; } else { track.keyframes.push(kf); }
    track.keyframes.sort(function (a, b) { return a[0] - b[0]; });
    track.first = Math.min(track.first, frame);
    track.last = Math.max(track.last, frame);
    track.changed = true;
    save();
  }

  function save() {
    var out = tracks.filter(function (t) { return t.changed; }).map(function (t) {
      return {number: typeof t.number === "number" ? t.number : null, keyframes: t.keyframes};
    });
    boxesField.value = out.length ? JSON.stringify(out) : "";
  }

  canvas.addEventListener("mousedown", function (ev) {
    var p = point(ev);
    var t = hit(p);
    if (t) {
      selected = t;
      var b = boxAt(t, frame);
      drag = {mode: "move", track: t, start: p, origin: b, box: b.slice()};
    } else {
      drag = {mode: "draw", track: null, start: p, box: [p[0], p[1], 0, 0]};
    }
    draw();
  });
  canvas.addEventListener("mousemove", function (ev) {
    if (!drag) { return; }
    var p = point(ev);
    if (drag.mode === "move") {
      drag.box = [drag.origin[0] + p[0] - drag.start[0], drag.origin[1] + p[1] - drag.start[1], drag.origin[2], drag.origin[3]];
    } else {
      drag.box = [Math.min(p[0], drag.start[0]), Math.min(p[1], drag.start[1]),
                  Math.abs(p[0] - drag.start[0]), Math.abs(p[1] - drag.start[1])];
      ctx.strokeStyle = "#2563eb";
      draw();
      ctx.strokeStyle = "#2563eb";
      ctx.strokeRect(drag.box[0], drag.box[1], drag.box[2], drag.box[3]);
      return;
    }
    draw();
  });
  window.addEventListener("mouseup", function () {
    if (!drag) { return; }
    var d = drag;
    drag = null;
    if (d.mode === "move") {
      if (d.box[0] !== d.origin[0] || d.box[1] !== d.origin[1]) { setKeyframe(d.track, d.box); }
    } else if (d.box[2] >= 6 && d.box[3] >= 6) {
      if (selected) {
        setKeyframe(selected, d.box);
      } else {
        newCounter += 1;
        var t = {number: "new" + newCounter, kind: "manual", keyframes: [], first: frame,
                 last: Math.min(data.frameCount - 1, frame + data.every - 1), kept: true, subject: false, changed: true};
        tracks.push(t);
        selected = t;
        setKeyframe(t, d.box);
      }
    }
    draw();
  });

  function removeBox() {
    if (!selected) { return; }
    var i = keyframeIndex(selected, frame);
    if (i < 0) { return; }
    selected.keyframes.splice(i, 1);
    selected.changed = true;
    if (!selected.keyframes.length) {
      if (typeof selected.number !== "number") { tracks.splice(tracks.indexOf(selected), 1); }
      selected = null;
    }
    save();
    draw();
  }

  document.getElementById("delete-box").addEventListener("click", removeBox);
  document.getElementById("deselect").addEventListener("click", function () { selected = null; draw(); });
  canvas.addEventListener("keydown", function (ev) {
    if (ev.key === "Delete" || ev.key === "Backspace") { ev.preventDefault(); removeBox(); }
    if (ev.key === "Escape") { selected = null; draw(); }
    if (ev.key === "ArrowRight") { ev.preventDefault(); load(frame + 1); }
    if (ev.key === "ArrowLeft") { ev.preventDefault(); load(frame - 1); }
  });
  slider.addEventListener("input", function () { load(parseInt(slider.value, 10)); });
  document.querySelectorAll("[data-step]").forEach(function (b) {
    b.addEventListener("click", function () { load(frame + parseInt(b.getAttribute("data-step"), 10)); });
  });
  document.querySelectorAll("[data-goto]").forEach(function (b) {
    b.addEventListener("click", function () {
      var n = parseInt(b.getAttribute("data-select"), 10);
      selected = tracks.filter(function (t) { return t.number === n; })[0] || null;
      load(parseInt(b.getAttribute("data-goto"), 10));
    });
  });
  form.addEventListener("change", draw);
  form.addEventListener("submit", save);
  load(data.start || 0);
}());
