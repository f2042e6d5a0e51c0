// Behaviour kept out of the HTML so the Content-Security-Policy can forbid inline script and style.
"use strict";

// Forms with data-confirm="question" ask before they submit.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
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

// Timeline bars are placed from their data-left and data-width percentages.
document.addEventListener("DOMContentLoaded", () => {
  for (const bar of document.querySelectorAll(".timeline .bar[data-left]")) {
    bar.style.left = `${bar.dataset.left}%`;
    bar.style.width = `${bar.dataset.width}%`;
  }
});
