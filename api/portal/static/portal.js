/* The portal's only script: live totals and line items on the new-form
 * page, an immediate EU-residence warning, confirmations, print buttons.
 * Every page works without it; the server computes and checks everything
 * again. Loaded from /portal/static (the CSP allows no inline script).
 * Money is integer cents (BigInt), never a float, rounded half up exactly
 * as shared/money.py does. */
(function () {
  "use strict";

  document.querySelectorAll('[data-action="print"]').forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });

  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  var form = document.getElementById("new-form");
  if (form) { newForm(form); }

  function newForm(form) {
    var lang = form.dataset.lang;
    var feeBp = BigInt(form.dataset.feeBp || "0");
    var minTotal = BigInt(form.dataset.minTotal || "0");
    var minInclusive = form.dataset.minInclusive === "1";
    var lines = document.getElementById("lines");
    var template = document.getElementById("line-template");
    var addButton = document.getElementById("add-line");

    function parseCents(text) {
      var compact = text.replace(/[€\s\u00a0]/g, "");
      var match = /^(\d{1,9})(?:[.,](\d{1,2}))?$/.exec(compact);
      if (!match) { return null; }
      var decimals = (match[2] || "").padEnd(2, "0");
      return BigInt(match[1]) * 100n + BigInt(decimals);
    }

    function roundHalfUp(numerator, denominator) {
      return (2n * numerator + denominator) / (2n * denominator);
    }

    function money(cents) {
      var negative = cents < 0n;
      if (negative) { cents = -cents; }
      var euros = (cents / 100n).toString();
      var rest = (cents % 100n).toString().padStart(2, "0");
      var group = lang === "nl" ? "." : ",";
      euros = euros.replace(/\B(?=(\d{3})+(?!\d))/g, group);
      var sign = negative ? "-" : "";
      return lang === "nl" ? "€ " + sign + euros + "," + rest : sign + "€" + euros + "." + rest;
    }

    function show(id, cents) {
      var output = document.getElementById(id);
      if (output) {
        output.textContent = money(cents);
        output.dataset.cents = cents.toString();
      }
    }

    function recompute() {
      var total = 0n, vat = 0n;
      lines.querySelectorAll("tr.line").forEach(function (row) {
        var quantityText = row.querySelector('[name$=".quantity"]').value.trim();
        var quantity = /^\d{1,5}$/.test(quantityText) ? BigInt(quantityText) : null;
        var price = parseCents(row.querySelector('[name$=".price"]').value);
        var rate = BigInt(row.querySelector('[name$=".vat_rate"]').value || "0") * 100n;
        var output = row.querySelector(".line-total");
        if (quantity && price) {
          var gross = quantity * price;
          total += gross;
          vat += roundHalfUp(gross * rate, 10000n + rate);
          output.textContent = money(gross);
        } else {
          output.textContent = "";
        }
      });
      var fee = roundHalfUp(vat * feeBp, 10000n);
      show("total-amount", total);
      show("vat-amount", vat);
      show("fee-amount", fee);
      show("refund-amount", vat - fee);
      var below = minInclusive ? total < minTotal : total <= minTotal;
      document.getElementById("minimum-note").hidden = total === 0n || !below;
    }

    function renumber() {
      var text = form.dataset.msgLine, removeText = form.dataset.msgRemove;
      lines.querySelectorAll("tr.line").forEach(function (row, index) {
        var number = String(index + 1);
        row.dataset.index = String(index);
        row.querySelectorAll("[name], [id], [for], [aria-describedby]").forEach(function (el) {
          ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
            var value = el.getAttribute(attr);
            if (value) {
              el.setAttribute(attr, value.replace(/items([.-])(\d+|__N__)([.-])/g, "items$1" + index + "$3"));
            }
          });
        });
        row.querySelector(".line-number").textContent = number;
        row.querySelectorAll("label.line-label").forEach(function (label) {
          label.textContent = text.replace("{n}", number) + ", " + label.dataset.field;
        });
        var remove = row.querySelector("button.remove");
        remove.value = "remove:" + index;
        remove.setAttribute("aria-label", removeText.replace("{n}", number));
        remove.title = removeText.replace("{n}", number);
        var output = row.querySelector("output.line-total");
        output.setAttribute("for", output.getAttribute("for").replace(/items-(\d+|__N__)-/g, "items-" + index + "-"));
      });
    }

    function addLine() {
      var row = template.content.querySelector("tr.line").cloneNode(true);
      lines.appendChild(row);
      renumber();
      recompute();
      row.querySelector('[name$=".description"]').focus();
    }

    function removeLine(row) {
      var rows = lines.querySelectorAll("tr.line");
      if (rows.length === 1) {
        row.querySelectorAll("input").forEach(function (input) {
          input.value = input.name.endsWith(".quantity") ? "1" : "";
        });
        row.querySelector("select").selectedIndex = 0;
        recompute();
        row.querySelector('[name$=".description"]').focus();
        return;
      }
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumber();
      recompute();
      (next ? next.querySelector('[name$=".description"]') : addButton).focus();
    }

    addButton.addEventListener("click", function (event) {
      event.preventDefault();
      addLine();
    });
    lines.addEventListener("click", function (event) {
      var button = event.target.closest("button.remove");
      if (button) {
        event.preventDefault();
        removeLine(button.closest("tr.line"));
      }
    });
    lines.addEventListener("input", recompute);
    lines.addEventListener("change", recompute);

    // EU residence: said at once, next to the field (the server says it
    // again if the form is sent anyway).
    var residence = document.getElementById("traveller-residence_country");
    var passport = document.getElementById("traveller-passport_country");
    var nationality = document.getElementById("traveller-nationality");
    var residenceError = document.getElementById("err-traveller-residence_country");
    function checkResidence() {
      var option = residence.options[residence.selectedIndex];
      var inEu = option && option.dataset.eu === "1";
      residenceError.hidden = !inEu;
      residenceError.textContent = inEu ? form.dataset.msgEu.replace("{country}", option.textContent.trim()) : "";
      if (inEu) { residence.setAttribute("aria-invalid", "true"); } else { residence.removeAttribute("aria-invalid"); }
      residence.closest(".field").classList.toggle("has-error", inEu);
    }
    residence.addEventListener("change", checkResidence);
    // Most travellers' passport, nationality and residence are one country:
    // choosing the first fills the others while they are still empty.
    passport.addEventListener("change", function () {
      if (!nationality.value) { nationality.value = passport.value; }
      if (!residence.value) {
        residence.value = passport.value;
        checkResidence();
      }
    });

    // One form per click: a second "issue" while the first is on its way
    // would only meet "this invoice already has a form".
    form.addEventListener("submit", function (event) {
      if (event.submitter && event.submitter.value === "issue") {
        if (form.dataset.sent === "1") { event.preventDefault(); return; }
        form.dataset.sent = "1";
      }
    });

    if (form.dataset.focus) {
      var target = document.getElementById(form.dataset.focus.replace(/\./g, "-"));
      if (target) { target.focus(); }
    }
    recompute();
  }
})();
