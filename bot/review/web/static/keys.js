/* FIND review: keyboard shortcuts (loaded from 'self', as the CSP requires; no inline script).

   Video page: 1-9 choose the policy reason, c confirm, d dismiss (the decision form is
   submitted as if its button were clicked, so the browser still asks for a missing reason),
   n the next video of the queue.  Queue page: j/k move the selection, Enter or o open it,
   n open the first video.  Keys are ignored while typing in a field or with a modifier. */
(function () {
  "use strict";

  /* Text fields keep their keys; a focused select does not (the browser focuses the reason
     list when a decision lacks one: 1-9 then pick it, c/d decide). */
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || (target && target.isContentEditable);
  }

  function decide(value) {
    var button = document.querySelector('#decide button[name="decision"][value="' + value + '"]');
    if (!button) return false;
    button.form.requestSubmit(button);
    return true;
  }

  function chooseReason(n) {
    var select = document.querySelector("#decide select[name=reason]");
    if (!select || n >= select.options.length) return false;
    select.selectedIndex = n;  /* option 0 is "choose" */
    return true;
  }

  function follow(selector) {
    var link = document.querySelector(selector);
    if (!link) return false;
    window.location.assign(link.href);
    return true;
  }

  var rows = [];
  var selected = -1;

  function select(index) {
    if (!rows.length) return false;
    if (selected >= 0) rows[selected].classList.remove("selected");
    selected = Math.max(0, Math.min(rows.length - 1, index));
    rows[selected].classList.add("selected");
    rows[selected].scrollIntoView({ block: "nearest" });
    return true;
  }

  function openRow(index) {
    var row = rows[index];
    return row ? follow('#queue tbody tr[data-video="' + row.dataset.video + '"] a.video-link') : false;
  }

  document.addEventListener("DOMContentLoaded", function () {
    rows = Array.prototype.slice.call(document.querySelectorAll("#queue tbody tr"));
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    var key = event.key;
    if (key === "Enter" && event.target.closest && event.target.closest("a, button")) return;
    var done = false;
    if (document.getElementById("decide") || document.getElementById("next-link")) {
      if (key >= "1" && key <= "9") done = chooseReason(Number(key));
      else if (key === "c") done = decide("confirmed");
      else if (key === "d") done = decide("dismissed");
      else if (key === "n") done = follow("#next-link");
    } else if (rows.length) {
      if (key === "j") done = select(selected + 1);
      else if (key === "k") done = select(selected - 1);
      else if (key === "Enter" || key === "o") done = openRow(Math.max(0, selected));
      else if (key === "n") done = openRow(0);
    }
    if (done) event.preventDefault();
  });
})();
