// Service worker of the resident page: keeps the page's shell for slow or lost connections.
// Network first for the page itself, cache first for versioned assets; never caches the API,
// live streams, HLS or replay files.
const CACHE = "villagecast-shell-v1";
const SHELL = ["/listen", "/manifest.webmanifest", "/static/css/app.css", "/static/js/listen.js",
  "/static/js/api.js", "/static/js/dom.js", "/static/js/i18n.js", "/static/js/strings.js",
  "/static/js/state.js", "/static/vendor/hls.light.min.js",
  "/static/icons/icon.svg", "/static/icons/icon-192.png"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (/^\/(api|live|hls|media|feeds)\//.test(url.pathname)) return;
  if (url.pathname === "/listen" || url.pathname === "/manifest.webmanifest") {
    event.respondWith(
      fetch(event.request)
        .then((response) => {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
          return response;
        })
        .catch(() => caches.match(url.pathname)),
    );
    return;
  }
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(
      caches.match(event.request).then((hit) => hit || fetch(event.request).then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        }
        return response;
      }).catch(() => caches.match(url.pathname))),
    );
  }
});
