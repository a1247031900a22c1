// Player helpers (no inline script: the Content-Security-Policy allows only our own files).
// - the comment form takes the player's current time when it gets focus or the video pauses;
// - clicking a timecode seeks the player there;
// - a comment is added without leaving the player (the form still works without JavaScript).
(function () {
  "use strict";
  var video = document.getElementById("player");
  if (!video) return;
  var form = document.getElementById("annotation-form");
  var at = document.getElementById("id_at");
  var text = document.getElementById("id_text");
  function stamp() { if (at) at.value = video.currentTime.toFixed(1); }
  function seekable(link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      video.currentTime = parseFloat(link.dataset.seconds);
      video.play();
    });
  }
  if (text) text.addEventListener("focus", stamp);
  video.addEventListener("pause", stamp);
  document.querySelectorAll("a.timecode").forEach(seekable);
  if (!form) return;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                        headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (res) {
        var list = document.querySelector("ul.annotations");
        if (!res.ok) { alert(res.body.detail); return; }
        var empty = list.querySelector("li.muted");
        if (empty) empty.remove();
        var li = document.createElement("li");
        var link = document.createElement("a");
        link.className = "timecode mono"; link.href = "#t=" + res.body.at_seconds;
        link.dataset.seconds = res.body.at_seconds; link.textContent = res.body.at_seconds.toFixed(1) + " s";
        seekable(link);
        li.appendChild(link);
        li.appendChild(document.createTextNode(" " + res.body.text + " — " + res.body.author));
        list.appendChild(li);
        text.value = "";
      });
  });
})();
