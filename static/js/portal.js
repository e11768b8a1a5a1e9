// The portal's only script: copy-to-clipboard buttons. Loaded as a file, since the
// Content-Security-Policy allows no inline script.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button || !navigator.clipboard) {
    return;
  }
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1200);
  });
});

// A search form marked data-drop-defaults sends only the fields set to something other than
// what their absence means (empty, or a field's data-default), with htmx or without, so its
// URL (pasted into tickets) says only what was chosen.
// `formdata` does not bubble: listen in the capture phase.
document.addEventListener("formdata", (event) => {
  const form = event.target;
  if (!form.matches("[data-drop-defaults]")) {
    return;
  }
  for (const [name, value] of [...event.formData.entries()]) {
    const field = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (value === (field?.dataset.default ?? "")) {
      event.formData.delete(name);
    }
  }
}, true);
