// Behaviour kept out of the HTML so the Content-Security-Policy can forbid inline script and style.
"use strict";

// Forms with data-confirm="question" ask before they submit. A form being sent is sent once:
// its buttons are disabled (after the browser has read the clicked one's value) and it says it
// is busy, with the button's text replaced by data-busy if given, until the next page loads.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset.confirm;
  if (form.dataset.sending || (question && !window.confirm(question))) {
    event.preventDefault();
    return;
  }
  form.dataset.sending = "true";
  form.setAttribute("aria-busy", "true");
  const clicked = event.submitter;
  window.setTimeout(() => {
    for (const button of form.querySelectorAll("button")) {
      button.disabled = true;
    }
    if (clicked && form.dataset.busy) {
      clicked.dataset.label = clicked.textContent;
      clicked.textContent = form.dataset.busy;
    }
  }, 0);
});

// Coming back to a page from the browser's cache: its forms can be sent again.
window.addEventListener("pageshow", () => {
  for (const form of document.querySelectorAll("form[data-sending]")) {
    delete form.dataset.sending;
    form.removeAttribute("aria-busy");
    for (const button of form.querySelectorAll("button")) {
      button.disabled = false;
      if (button.dataset.label) {
        button.textContent = button.dataset.label;
      }
    }
  }
});

// Links with data-back go back in the browser's history.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-back]");
  if (link) {
    event.preventDefault();
    window.history.back();
  }
});

// Timeline bars and axis ticks are placed from their data-left and data-width percentages.
document.addEventListener("DOMContentLoaded", () => {
  for (const item of document.querySelectorAll(".timeline [data-left]")) {
    item.style.left = `${item.dataset.left}%`;
    if (item.dataset.width) {
      item.style.width = `${item.dataset.width}%`;
    }
  }
});
