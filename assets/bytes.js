// Sizes as Témoin's pages write them (Django's filesizeformat, e.g. the partner page's table of
// received files): "127,1 Kio" in French, "127.1 KB" in English, one decimal, a no-break space.
// The Uppy bundle uses it in place of @transloadit/prettier-bytes (esbuild --alias in the Makefile's
// uppy-build), so Uppy's file list, status bar and size-limit messages read like our tables.
// The page's language is <html lang> (French unless English was chosen), as depot.js reads it.
const UNITS = {
  fr: ["Kio", "Mio", "Gio", "Tio", "Pio"],
  en: ["KB", "MB", "GB", "TB", "PB"],
};

function language() {
  const lang = (typeof document !== "undefined" && document.documentElement.lang) || "fr";
  return lang.toLowerCase().indexOf("fr") === 0 ? "fr" : "en";
}

// The same signature as prettier-bytes (Uppy passes the size only).
export function prettierBytes(input) {
  if (typeof input !== "number" || Number.isNaN(input)) {
    throw new TypeError(`Expected a number, got ${typeof input}`);
  }
  const lang = language();
  const bytes = Math.abs(input);
  const sign = input < 0 ? "-" : "";
  let text;
  if (bytes < 1024) {
    const n = Math.trunc(bytes);
    // Django's plural rules: French "octet" for 0 and 1, English "byte" for 1 only.
    text = lang === "fr" ? `${n}\u00a0octet${n > 1 ? "s" : ""}` : `${n}\u00a0byte${n === 1 ? "" : "s"}`;
  } else {
    let exponent = 1;
    while (exponent < 5 && bytes >= 1024 ** (exponent + 1)) exponent += 1;
    const number = (bytes / 1024 ** exponent).toFixed(1);
    text = `${lang === "fr" ? number.replace(".", ",") : number}\u00a0${UNITS[lang][exponent - 1]}`;
  }
  return sign + text;
}
