// Forms with data-confirm="question" ask before they submit. A file, not an
// onsubmit attribute: the Content-Security-Policy forbids inline script.
document.addEventListener(
  "submit",
  (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  },
  true,
);
