// Entry of the Uppy bundle (`make assets`, esbuild): config/static/vendor/uppy/uppy.js and uppy.css.
// Only the three plugins the partner's page uses; config/static/requisitions/depot.js starts them.
import Uppy from "@uppy/core";
import Dashboard from "@uppy/dashboard";
import Tus from "@uppy/tus";
import fr_FR from "@uppy/locales/lib/fr_FR.js";
import "@uppy/core/css/style.css";
import "@uppy/dashboard/css/style.css";

window.TemoinUppy = { Uppy, Dashboard, Tus, locales: { fr: fr_FR } };
