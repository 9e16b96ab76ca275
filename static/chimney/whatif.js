// What-if slider: recompute borrowing power as the member moves the value (the form still
// works without JavaScript: it submits ?value= and the server answers the same figure).
// The arithmetic is the server's (homes.finance.equity.borrowing_power), in exact decimals:
// max CLTV x value - liens, capped at the maximum line, rounded down to the dollar. Binary
// floating point would miss by a dollar (0.7 x 350000 is 244999.99999999997).
(function () {
  var form = document.getElementById("whatif");
  if (!form || typeof BigInt !== "function") return;
  var input = document.getElementById("whatif-value");
  var shown = document.getElementById("whatif-shown");
  var power = document.getElementById("whatif-power");
  var money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });
  var TEN = BigInt(10);
  // "240000.50" → {units: 24000050n, places: 2}; null when empty or not a number.
  function decimal(text) {
    var m = /^\s*(-?)(\d*)(?:\.(\d*))?\s*$/.exec(text === undefined ? "" : String(text));
    if (!m || (m[2] === "" && !m[3])) return null;
    var fraction = m[3] || "";
    return { units: BigInt(m[1] + (m[2] || "0") + fraction), places: fraction.length };
  }
  function at(d, places) { return d.units * TEN ** BigInt(places - d.places); }
  function data(name) { return decimal(form.dataset[name]); }
  function update() {
    var value = decimal(input.value);
    var cltv = data("maxCltv"), liens = data("liens") || { units: BigInt(0), places: 0 };
    var max = data("maxLine"), min = data("minLine");
    if (value === null || cltv === null) return;
    var product = { units: cltv.units * value.units, places: cltv.places + value.places };
    var places = Math.max(product.places, liens.places, max ? max.places : 0);
    var amount = at(product, places) - at(liens, places);
    if (max !== null && at(max, places) < amount) amount = at(max, places);
    var dollars = amount / TEN ** BigInt(places); // BigInt division truncates toward zero
    if (dollars <= 0 || (min !== null && at({ units: dollars, places: 0 }, min.places) < min.units)) {
      dollars = BigInt(0);
    }
    shown.textContent = money.format(Number(value.units) / Math.pow(10, value.places));
    power.textContent = money.format(Number(dollars));
  }
  input.addEventListener("input", update);
})();
