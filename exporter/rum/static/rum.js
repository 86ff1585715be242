// stack-exporter's browser adapter for real user monitoring (docs/rum.md).
//
//   <script type="module">
//     import * as webVitals from "https://cdn.jsdelivr.net/npm/web-vitals@5/dist/web-vitals.js";
//     import { start } from "https://rum.example.com/rum/v1/rum.js";
//     start({ webVitals });
//   </script>
//
// It collects a page view's Core Web Vitals (web-vitals' onLCP, onINP, onCLS, onFCP, onTTFB),
// its load time (navigation timing), counts of uncaught errors and unhandled rejections and of
// failed fetch() calls by status class, and sends them in a beacon when the page is hidden or
// left (visibilitychange -> hidden, pagehide), with navigator.sendBeacon (fetch keepalive as
// the fallback). Leaving a page in Chromium makes two (pagehide comes first, then hidden, when
// web-vitals reports CLS and LCP); later changes (the page shown and hidden again) go in a
// further one. A page view is counted once (view: true on the first).
//
// What it sends is all in the beacon: the page's path (location.pathname: never the query
// string or the fragment), metric names, values and navigation types, and counts. Never an
// error message, a stack trace, a URL of a failed call, a cookie or an identifier.
// The endpoint reduces the path to a configured route pattern before anything is stored.

// what the endpoint accepts (exporter/rum/beacon.py); a value outside is dropped here, so
// one odd measurement never costs the whole beacon
const MAX_VALUE = { LCP: 600000, FCP: 600000, TTFB: 600000, load: 600000, INP: 60000, CLS: 10 };
const MAX_COUNT = 1000;
const NAVIGATION_TYPES = {
  navigate: "navigate",
  reload: "reload",
  back_forward: "back-forward",
  prerender: "prerender",
};

let started = false;

/**
 * Start collecting; call once per page.
 *
 * @param {object} options
 * @param {object} options.webVitals the web-vitals module (v4 or v5): `import * as webVitals from "web-vitals"`
 * @param {string|URL} [options.endpoint] where beacons go; by default the endpoint this script came from
 * @param {string|function(): string} [options.page] the path to report instead of location.pathname
 *   (a string, or a function called when a beacon is sent); its query and fragment are dropped
 * @param {function(URL): boolean} [options.apiFilter] which fetch() calls count as API calls
 *   (default: every one except the beacon endpoint's)
 * @returns {{flush: function(): void}} flush() sends what is pending now (for tests and single-page apps)
 */
export function start({ webVitals, endpoint, page, apiFilter } = {}) {
  if (!webVitals || typeof webVitals.onLCP !== "function") {
    throw new TypeError('start({ webVitals }) needs the web-vitals module: import * as webVitals from "web-vitals"');
  }
  if (started) {
    return { flush() {} };
  }
  started = true;
  const beaconURL = new URL(endpoint ?? new URL("beacon", import.meta.url), location.href);
  const originalFetch = typeof window.fetch === "function" ? window.fetch.bind(window) : null;

  const pending = new Map(); // metric name -> {name, value, navigation_type, id}
  const sentIds = new Set(); // web-vitals metric ids already sent: each goes once
  let errors = { error: 0, unhandledrejection: 0 };
  let api = { "4xx": 0, "5xx": 0, network: 0 };
  let viewSent = false; // the first beacon of a page view carries view: true

  function currentPage() {
    let path = typeof page === "function" ? page() : page ?? location.pathname;
    path = String(path).split(/[?#]/, 1)[0];
    return path.startsWith("/") ? path.slice(0, 2048) : "/";
  }

  function measure(name, value, navigationType, id) {
    if (!(name in MAX_VALUE) || typeof value !== "number" || !(value >= 0 && value <= MAX_VALUE[name])) {
      return;
    }
    if (id !== undefined && sentIds.has(id)) {
      return; // web-vitals reports CLS and INP again when a page is hidden a second time
    }
    const queued = pending.get(name);
    if (queued && queued.id !== id) {
      flush(); // one entry per name in a beacon: send the older measurement first
    }
    const entry = { name, value, id };
    if (typeof navigationType === "string") {
      entry.navigation_type = navigationType;
    }
    pending.set(name, entry);
  }

  function onMetric(metric) {
    measure(metric.name, metric.value, metric.navigationType, metric.id);
  }

  function flush() {
    const hasErrors = errors.error + errors.unhandledrejection > 0;
    const hasApi = api["4xx"] + api["5xx"] + api.network > 0;
    if (viewSent && pending.size === 0 && !hasErrors && !hasApi) {
      return;
    }
    const beacon = { v: 1, page: currentPage() };
    if (!viewSent) {
      beacon.view = true;
    }
    if (pending.size > 0) {
      beacon.metrics = [...pending.values()].map(({ name, value, navigation_type }) =>
        navigation_type === undefined ? { name, value } : { name, value, navigation_type },
      );
    }
    if (hasErrors) {
      beacon.errors = errors;
    }
    if (hasApi) {
      beacon.api = api;
    }
    send(JSON.stringify(beacon));
    for (const entry of pending.values()) {
      if (entry.id !== undefined) {
        sentIds.add(entry.id);
      }
    }
    pending.clear();
    errors = { error: 0, unhandledrejection: 0 };
    api = { "4xx": 0, "5xx": 0, network: 0 };
    viewSent = true;
  }

  function send(body) {
    // a string body goes as text/plain: a "simple" CORS request, no preflight
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(beaconURL.href, body)) {
        return;
      }
    } catch {
      // fall through to fetch
    }
    if (originalFetch) {
      originalFetch(beaconURL.href, {
        method: "POST",
        body,
        keepalive: true,
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "text/plain" },
      }).catch(() => {});
    }
  }

  function bump(counts, key) {
    counts[key] = Math.min(MAX_COUNT, counts[key] + 1);
  }

  // the Core Web Vitals, each reported by web-vitals when final (mostly when the page is hidden)
  webVitals.onLCP(onMetric);
  // INP with every change: web-vitals 5 settles an interaction in an idle callback, and a
  // page hidden before that callback runs (a slow click, then leaving at once) never reports
  // it; with reportAllChanges the value is pending here as soon as it is known, and the
  // metric id still goes once
  webVitals.onINP(onMetric, { reportAllChanges: true });
  webVitals.onCLS(onMetric);
  webVitals.onFCP(onMetric);
  webVitals.onTTFB(onMetric);

  // page load: navigation start to the end of the load event, once per page load
  function recordLoad() {
    const [navigation] = performance.getEntriesByType("navigation");
    if (!navigation || !(navigation.loadEventEnd > 0)) {
      return;
    }
    const prerendered = document.prerendering || navigation.activationStart > 0;
    const type = prerendered ? "prerender" : NAVIGATION_TYPES[navigation.type] ?? "navigate";
    measure("load", navigation.loadEventEnd - navigation.startTime, type, undefined);
  }
  if (document.readyState === "complete") {
    setTimeout(recordLoad, 0);
  } else {
    // loadEventEnd is set once the load handlers have run: read it a task later
    addEventListener("load", () => setTimeout(recordLoad, 0), { once: true });
  }

  // uncaught errors and unhandled rejections: counted, the message and stack never read
  addEventListener("error", () => bump(errors, "error"));
  addEventListener("unhandledrejection", () => bump(errors, "unhandledrejection"));

  // failed fetch() calls by status class; the beacon endpoint's own calls never count
  if (originalFetch) {
    window.fetch = function fetch(input, init) {
      const result = originalFetch(input, init);
      let url = null;
      try {
        url = new URL(input instanceof Request ? input.url : String(input), location.href);
      } catch {
        return result;
      }
      if (url.origin === beaconURL.origin && url.pathname === beaconURL.pathname) {
        return result;
      }
      if (apiFilter && !apiFilter(url)) {
        return result;
      }
      return result.then(
        (response) => {
          if (response.status >= 500) {
            bump(api, "5xx");
          } else if (response.status >= 400) {
            bump(api, "4xx");
          }
          return response;
        },
        (error) => {
          // an abort is the page's own choice (a navigation, a timeout it set), not a failure
          if (!(error && error.name === "AbortError")) {
            bump(api, "network");
          }
          throw error;
        },
      );
    };
  }

  // flush when the page is hidden or left; registered after web-vitals' own listeners, so
  // the values web-vitals reports on the same event are in this beacon
  addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") {
      flush();
    }
  });
  addEventListener("pagehide", flush);
  // a page restored from the back/forward cache is a new page view
  addEventListener("pageshow", (event) => {
    if (event.persisted) {
      viewSent = false;
    }
  });

  return { flush };
}
