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

// LTI Dynamic Registration (§3.4): the tool's registration page opens in a window of its own; when
// the tool posts {subject: "org.imsglobal.lti.close"} to its opener, the page reloads to show the
// tool waiting for approval (data-registration names that page).
var afterRegistration = null;
document.addEventListener("click", function (event) {
  var link = event.target.closest("a[data-registration]");
  if (!link) { return; }
  event.preventDefault();
  afterRegistration = link.getAttribute("data-registration");
  window.open(link.href, "lti-registration", "width=900,height=760");
});
window.addEventListener("message", function (event) {
  if (afterRegistration && event.data && event.data.subject === "org.imsglobal.lti.close") {
    var next = afterRegistration;
    afterRegistration = null;  // once, however many close messages the tool sends
    window.location.assign(next);
  }
});
