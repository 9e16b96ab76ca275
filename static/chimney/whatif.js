// What-if slider: recompute borrowing power as the member moves the value (the form still
// works without JavaScript: it submits ?value= and the server answers the same figure).
(function () {
  var form = document.getElementById("whatif");
  if (!form) return;
  var input = document.getElementById("whatif-value");
  var shown = document.getElementById("whatif-shown");
  var power = document.getElementById("whatif-power");
  var money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });
  function num(name) { var v = form.dataset[name]; return v === "" || v === undefined ? null : parseFloat(v); }
  function update() {
    var value = parseFloat(input.value);
    var amount = Math.floor(num("maxCltv") * value - num("liens"));
    var max = num("maxLine"), min = num("minLine");
    if (max !== null) amount = Math.min(amount, max);
    if (amount <= 0 || (min !== null && amount < min)) amount = 0;
    shown.textContent = money.format(value);
    power.textContent = money.format(amount);
  }
  input.addEventListener("input", update);
})();
