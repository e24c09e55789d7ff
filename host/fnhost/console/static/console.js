// fnhost console: confirmations and the live log tail. No dependencies, no inline script (the CSP
// forbids it); every value from the server is put in the page as text, never as markup.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

function tail(box) {
  const url = box.getAttribute("data-url");
  const status = document.getElementById("tail-status");
  let after = "";
  let timer = null;

  function line(cls, text) {
    const el = document.createElement("div");
    el.className = cls;
    el.textContent = text;
    return el;
  }

  async function poll() {
    try {
      const response = await fetch(url + "&after=" + encodeURIComponent(after), {
        credentials: "same-origin",
        headers: { accept: "application/json" },
      });
      if (!response.ok) {
        status.textContent = "stopped: the server answered " + response.status + " (reload the page)";
        return;
      }
      const data = await response.json();
      for (const inv of data.invocations) {
        const entry = document.createElement("article");
        entry.className = "tail-entry";
        const head = line("tail-head outcome " + inv.outcome, new Date(inv.started_at * 1000).toISOString() + "  " + inv.outcome + "  " + inv.id);
        entry.appendChild(head);
        for (const text of inv.logs.split("\n").filter((l) => l.length > 0)) entry.appendChild(line("tail-log", text));
        if (inv.error) entry.appendChild(line("tail-error", inv.error));
        entry.appendChild(line("tail-report", inv.report));
        box.prepend(entry);
        after = inv.id;
      }
      status.textContent = "following · last checked " + new Date().toLocaleTimeString();
    } catch (e) {
      status.textContent = "cannot reach the server; retrying";
    }
    timer = window.setTimeout(poll, 2000);
  }
  poll();
  window.addEventListener("pagehide", () => window.clearTimeout(timer));
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("tail");
  if (box) tail(box);
});
