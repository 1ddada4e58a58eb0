// Copy buttons: a button with data-copy="ID" copies the text of element ID to the clipboard and
// says so in the page's live region. Served from the gateway itself (CSP script-src 'self').
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) { return; }
  var source = document.getElementById(button.getAttribute("data-copy"));
  var status = document.getElementById("copy-status");
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    if (status) { status.textContent = button.getAttribute("aria-label").replace(/^Copy/, "Copied"); }
  }, function () {
    if (status) { status.textContent = "Copying is not allowed here: select the text and copy it."; }
  });
});
