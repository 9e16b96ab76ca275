/* Subscribe this browser to Web Push with the environment's VAPID key. */
(function () {
  const section = document.getElementById("push");
  if (!section || !("serviceWorker" in navigator) || !("PushManager" in window)) {
    if (section) section.querySelector("#push-status").textContent = "This browser cannot show notifications.";
    return;
  }
  const status = section.querySelector("#push-status");
  const on = section.querySelector("#push-on");
  const off = section.querySelector("#push-off");
  const csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value;
  const key = (b64) => {
    const pad = "=".repeat((4 - (b64.length % 4)) % 4);
    const raw = atob((b64 + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  };
  const post = (url, body) =>
    fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: JSON.stringify(body) });
  navigator.serviceWorker.register(section.dataset.worker, { scope: "/" }).then(async (registration) => {
    const existing = await registration.pushManager.getSubscription();
    on.hidden = !!existing; off.hidden = !existing;
    on.addEventListener("click", async () => {
      try {
        const sub = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key(section.dataset.key) });
        const response = await post(section.dataset.subscribe, sub.toJSON());
        status.textContent = response.ok ? "Notifications are on for this device." : "We could not turn notifications on.";
        on.hidden = response.ok; off.hidden = !response.ok;
      } catch (e) { status.textContent = "Notifications were not allowed."; }
    });
    off.addEventListener("click", async () => {
      const sub = await registration.pushManager.getSubscription();
      if (sub) { await post(section.dataset.unsubscribe, { endpoint: sub.endpoint }); await sub.unsubscribe(); }
      status.textContent = "Notifications are off for this device."; on.hidden = false; off.hidden = true;
    });
  });
})();
