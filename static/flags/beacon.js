/* Page events for Chimney's member pages, sent to this site's own beacon endpoint.
 *
 * Included only for signed-in members who allowed analytics (the server decides; the
 * endpoint checks again). Events wait in a small queue and leave together: when ten are
 * waiting, every fifteen seconds, and when the page is hidden or left, with
 * navigator.sendBeacon (fetch with keepalive when the browser refuses the beacon). Pages
 * work the same without this script.
 *
 * Sent: "page_viewed" {path} once per page, and for any element with data-track="name",
 * a click event of that name with its data-track-* attributes as properties.
 * Other scripts may call window.chimneyTrack(name, properties).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = script && script.getAttribute("data-endpoint");
  if (!endpoint || !window.JSON || !window.Blob) return;

  var MAX_BATCH = 10; // the endpoint takes at most 20 per request
  var EVERY_MS = 15000;
  var queue = [];

  function send(events) {
    var body = JSON.stringify({ events: events });
    var queued = false;
    if (navigator.sendBeacon) {
      try {
        queued = navigator.sendBeacon(endpoint, new Blob([body], { type: "application/json" }));
      } catch (e) {
        queued = false;
      }
    }
    if (!queued && window.fetch) {
      fetch(endpoint, {
        method: "POST",
        body: body,
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        keepalive: true,
      }).catch(function () {});
    }
  }

  function flush() {
    while (queue.length) send(queue.splice(0, MAX_BATCH));
  }

  function track(name, properties) {
    queue.push({ name: name, properties: properties || {}, occurred_at: new Date().toISOString() });
    if (queue.length >= MAX_BATCH) flush();
  }

  function trackedProperties(element) {
    var out = {};
    for (var i = 0; i < element.attributes.length; i++) {
      var attribute = element.attributes[i];
      if (attribute.name.indexOf("data-track-") === 0) {
        out[attribute.name.slice(11).replace(/-/g, "_")] = attribute.value;
      }
    }
    return out;
  }

  document.addEventListener("click", function (event) {
    var element = event.target && event.target.closest && event.target.closest("[data-track]");
    if (element) track(element.getAttribute("data-track"), trackedProperties(element));
  }, true);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flush();
  });
  window.addEventListener("pagehide", flush);
  window.setInterval(flush, EVERY_MS);

  window.chimneyTrack = track;
  track("page_viewed", { path: window.location.pathname });
})();
