// Show times in the browser's time zone when the member has not chosen one yet.
(function () {
  var form = document.getElementById("tz-form");
  if (!form || form.dataset.tzChosen === "1" || !window.Intl) return;
  if (new URLSearchParams(window.location.search).has("tz")) return; // asked once already
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  var select = form.querySelector("select[name=tz]");
  if (!zone || !select || select.value === zone) return;
  if (!Array.prototype.some.call(select.options, function (o) { return o.value === zone; })) {
    select.add(new Option(zone, zone));
  }
  select.value = zone;
  form.submit();
})();
