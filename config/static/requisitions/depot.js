// The partner's upload page: starts Uppy (config/static/vendor/uppy, bundled by `make assets`) on
// #depot-uppy with the tus endpoint of the requisition's link. No inline script (the CSP).
(function () {
  "use strict";
  var el = document.getElementById("depot-uppy");
  if (!el || !window.TemoinUppy) return;
  var T = window.TemoinUppy;
  var status = document.getElementById("depot-status");
  var french = (document.documentElement.lang || "fr").toLowerCase().indexOf("fr") === 0;
  var maxSize = Number(el.dataset.maxSize) || null;
  var shaMax = Number(el.dataset.sha256Max) || 0;

  var uppy = new T.Uppy({
    id: "depot", autoProceed: false,
    locale: french ? T.locales.fr : undefined,
    restrictions: { maxFileSize: maxSize },
  });
  uppy.use(T.Dashboard, {
    target: el, inline: true, width: "100%", height: 380, showProgressDetails: true,
    proudlyDisplayPoweredByUppy: false, note: el.dataset.note,
  });
  uppy.use(T.Tus, {
    endpoint: el.dataset.endpoint,
    chunkSize: 16 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000],
    removeFingerprintOnSuccess: true,
    // Only these reach the server (Upload-Metadata): the name, and the browser's SHA-256 if computed.
    allowedMetaFields: ["filename", "filetype", "sha256"],
  });

  uppy.on("file-added", function (file) {
    // sha256 empty until computed: a file too large to hash here sends it empty (no hash given),
    // not the string "undefined" that the server refuses (400) as no SHA-256.
    uppy.setFileMeta(file.id, { filename: file.name, filetype: file.type || "", sha256: "" });
  });

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  // The SHA-256 of files up to shaMax, computed here with WebCrypto and sent as `sha256`: the server
  // refuses a file whose bytes differ from it. Larger files (WebCrypto has no streaming digest) are
  // hashed by the server only.
  if (window.crypto && window.crypto.subtle && shaMax) {
    uppy.addPreProcessor(function (fileIDs) {
      return fileIDs.reduce(function (done, id) {
        return done.then(function () {
          var file = uppy.getFile(id);
          if (!file || file.meta.sha256 || !file.data || file.size > shaMax) return null;
          status.textContent = el.dataset.hashing + " " + file.name;
          return file.data.arrayBuffer()
            .then(function (buf) { return window.crypto.subtle.digest("SHA-256", buf); })
            .then(function (digest) { uppy.setFileMeta(id, { sha256: hex(digest) }); })
            .catch(function () { return null; });
        });
      }, Promise.resolve()).then(function () { status.textContent = ""; });
    });
  }

  uppy.on("complete", function (result) {
    var text = el.dataset.done + " " + result.successful.length;
    if (result.failed.length) text += " — " + el.dataset.failed + " " + result.failed.length;
    status.textContent = text;
    // The server's list of what this link received (status and SHA-256 of each file), drawn again.
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("depot-received");
        var table = document.getElementById("depot-received");
        if (fresh && table) table.replaceWith(fresh);
      })
      .catch(function () { return null; });
  });
  window.temoinDepot = uppy;  // for the browser tests
})();
