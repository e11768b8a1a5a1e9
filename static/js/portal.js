// The portal's only script. Loaded as a file, since the Content-Security-Policy allows no
// inline script.

function announce(text) {
  document.getElementById("announcer").textContent = text;
}

// Copy-to-clipboard buttons.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button || !navigator.clipboard) {
    return;
  }
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    announce(`Copied ${button.dataset.copy}`);
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

// The job page's live region is replaced every 2 s while numbers are pending. Whatever had
// the keyboard's focus in it keeps it: the same link, Copy button or form button in the new
// content (their targets name them; they have no ids for htmx to restore focus by).
function focusSelector(element) {
  const quoted = (value) => `"${CSS.escape(value)}"`;
  if (element.matches("a[href]")) {
    return `a[href=${quoted(element.getAttribute("href"))}]`;
  }
  if (element.matches("[data-copy]")) {
    return `[data-copy=${quoted(element.dataset.copy)}]`;
  }
  if (element.form && element.form.hasAttribute("action")) {
    return `form[action=${quoted(element.form.getAttribute("action"))}] button`;
  }
  return null;
}

// A row's "Edit and retry" form, once opened, is not replaced under the person filling it:
// the region waits until it is closed or sent. A poll already on its way when the form was
// opened is dropped on arrival; later ones are not sent.
function isHeldOpen(region) {
  return region.matches("[hx-trigger^='every']") && region.querySelector("details[open]");
}
document.addEventListener("htmx:beforeRequest", (event) => {
  if (isHeldOpen(event.detail.elt)) {
    event.preventDefault();
  }
});

let focusedBeforeSwap = null;
document.addEventListener("htmx:beforeSwap", (event) => {
  if (isHeldOpen(event.detail.elt)) {
    event.detail.shouldSwap = false;
    return;
  }
  const active = document.activeElement;
  const inside = active && active !== document.body && event.detail.target.contains(active);
  focusedBeforeSwap = inside ? focusSelector(active) : null;
});
document.addEventListener("htmx:afterSwap", () => {
  if (focusedBeforeSwap) {
    document.querySelector(focusedBeforeSwap)?.focus();
    focusedBeforeSwap = null;
  }
});

// What htmx swaps in says what it shows in its [data-announce] elements (a preview's counts,
// how many numbers a search found); those of the page as loaded are not read out again.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-announce]").forEach((element) => {
    element.dataset.announced = "";
  });
});
document.addEventListener("htmx:afterSettle", () => {
  const fresh = [...document.querySelectorAll("[data-announce]:not([data-announced])")];
  fresh.forEach((element) => {
    element.dataset.announced = "";
  });
  if (fresh.length) {
    announce(fresh.map((element) => element.textContent.replace(/\s+/g, " ").trim()).join(" "));
  }
});
