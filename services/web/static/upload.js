// Document uploads with a progress bar (XMLHttpRequest upload events) and a preview of the chosen
// image. Without this script the same forms post as plain multipart forms and the page reloads.
"use strict";

function showStatus(form, text, isError) {
  var status = form.querySelector(".upload-status");
  status.textContent = "";
  var span = document.createElement("span");
  span.className = isError ? "error" : "ok";
  span.textContent = text;
  status.appendChild(span);
}

function previewChosen(form, input) {
  var img = form.querySelector("img.preview.local");
  var file = input.files && input.files[0];
  if (img.dataset.url) { URL.revokeObjectURL(img.dataset.url); delete img.dataset.url; }
  if (file && /^image\/(jpeg|png)$/.test(file.type)) {
    img.dataset.url = URL.createObjectURL(file);
    img.src = img.dataset.url;
    img.hidden = false;
  } else {
    img.hidden = true;
  }
}

// The web route answers a refusal with the documents page again: its alert holds the service's words.
function refusalOf(xhr) {
  if (/json/.test(xhr.getResponseHeader("Content-Type") || "")) {  // refused before the page (e.g. 413)
    try { return JSON.parse(xhr.responseText).detail || "上传失败，请稍后重试。"; } catch (e) { return "上传失败，请稍后重试。"; }
  }
  var page = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
  var alert = page.querySelector("[role=alert]");
  return alert ? alert.textContent.trim() : "上传失败，请稍后重试。";
}

function upload(form, event) {
  var input = form.querySelector("input[type=file]");
  if (!input.files || !input.files.length) { return; }  // the browser's own required check speaks
  event.preventDefault();
  var bar = form.querySelector("progress");
  var button = form.querySelector("button[type=submit]");
  var xhr = new XMLHttpRequest();
  bar.hidden = false;
  bar.value = 0;
  button.disabled = true;
  showStatus(form, "正在上传…", false);
  xhr.upload.addEventListener("progress", function (e) {
    if (e.lengthComputable) { bar.value = Math.round((e.loaded / e.total) * 100); }
  });
  xhr.addEventListener("load", function () {
    button.disabled = false;
    if (xhr.status >= 200 && xhr.status < 300) {
      bar.value = 100;
      showStatus(form, "上传成功", false);
      window.location.assign(xhr.responseURL || window.location.href);  // the page with the new state
    } else {
      bar.hidden = true;
      showStatus(form, refusalOf(xhr), true);
    }
  });
  xhr.addEventListener("error", function () {
    button.disabled = false;
    bar.hidden = true;
    showStatus(form, "网络异常，上传失败，请重试。", true);
  });
  xhr.open("POST", form.action);
  xhr.send(new FormData(form));
}

// A stored PDF is no image: its preview gives way to the download link beside it.
document.querySelectorAll("img.preview.stored").forEach(function (img) {
  if (img.complete && img.naturalWidth === 0) { img.hidden = true; }
  img.addEventListener("error", function () { img.hidden = true; });
});

document.querySelectorAll("form[data-upload]").forEach(function (form) {
  var input = form.querySelector("input[type=file]");
  input.addEventListener("change", function () { previewChosen(form, input); });
  form.addEventListener("submit", function (event) { upload(form, event); });
});
