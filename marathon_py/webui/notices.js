// The page's shared widgets: the modal dialog (prompt/confirm), the notice line, the error banner with
// its "Force" retry, and the load-error line.

import { $ } from "./render.js";

const NOTICE_MS = 8000;

// an in-page modal (prompt/confirm): resolves the input's value (or true), or null when cancelled
export function ask({ title, text = "", input = null, confirm = "OK", danger = false }) {
  const modal = $("#modal");
  const field = $("#modal-input");
  const ok = $("#modal-confirm");
  $("#modal-title").textContent = title;
  $("#modal-text").textContent = text;
  $("#modal-field").hidden = input === null;
  field.required = input !== null;
  if (input !== null) {
    $("#modal-label").textContent = input.label;
    field.type = input.type ?? "text";
    for (const attr of ["min", "step"]) {
      if (input[attr] !== undefined) field.setAttribute(attr, input[attr]);
      else field.removeAttribute(attr);
    }
    field.value = input.value ?? "";
  }
  ok.textContent = confirm;
  ok.classList.toggle("danger", danger);
  return new Promise((resolve) => {
    const listening = new AbortController();
    const finish = (value) => {
      listening.abort();
      if (modal.open) modal.close();
      resolve(value);
    };
    const { signal } = listening;
    $("#modal-form").addEventListener("submit", (e) => {
      e.preventDefault();
      if (input !== null && !field.reportValidity()) return;
      finish(input !== null ? field.value : true);
    }, { signal });
    $("#modal-cancel").addEventListener("click", () => finish(null), { signal });
    modal.addEventListener("cancel", (e) => {
      e.preventDefault();
      finish(null);
    }, { signal });
    modal.showModal();
    if (input !== null) field.select();
    else ok.focus();
  });
}

let noticeTimer = null;
export function notify(text) {
  $("#notice").textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => ($("#notice").textContent = ""), NOTICE_MS);
}

let retryForced = null;
export function showError(message, retry = null) {
  $("#error-message").textContent = message;
  $("#error-force").hidden = retry === null;
  retryForced = retry;
  $("#error").hidden = false;
}

export function hideError() {
  $("#error").hidden = true;
  retryForced = null;
}

$("#error-dismiss").addEventListener("click", hideError);
$("#error-force").addEventListener("click", () => {
  const retry = retryForced;
  hideError();
  retry?.();
});

export function showLoadError(err) {
  const box = $("#load-error");
  box.textContent = err ? `Could not load: ${err.message}` : "";
  box.hidden = !err;
}
