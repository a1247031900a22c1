// The job page's player: once the approver has played (nearly) all of a redacted copy, tell the
// server how many seconds were actually played (the "played" ranges: seeking past a part does not
// count). Approval of the copy requires it (issue 15: who approves a copy has watched it).
(function () {
  "use strict";
  function playedSeconds(video) {
    var total = 0;
    for (var i = 0; i < video.played.length; i++) { total += video.played.end(i) - video.played.start(i); }
    return total;
  }
  document.querySelectorAll("video.redacted-copy").forEach(function (video) {
    var sent = false;
    function report() {
      if (sent || !video.duration) { return; }
      var played = playedSeconds(video);
      if (played < 0.95 * video.duration) { return; }
      sent = true;
      var body = new FormData();
      body.append("played", played.toFixed(3));
      fetch(video.getAttribute("data-watched-url"), {
        method: "POST", body: body, credentials: "same-origin",
        headers: {"X-CSRFToken": video.getAttribute("data-csrf")}
      }).then(function (response) {
        var note = video.parentNode.querySelector("[id^=watched-]");
        if (response.ok && note) { note.textContent = "Vous avez visionné cette copie en entier."; }
        if (!response.ok) { sent = false; }
      });
    }
    video.addEventListener("ended", report);
    video.addEventListener("pause", report);
  });
}());
