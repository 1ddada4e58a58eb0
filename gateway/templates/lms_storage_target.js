// The window that keeps LTI platform storage (Client Side postMessages): "_parent" is the
// parent itself; another name is a frame of the platform's window, found by name (a cross-origin
// window lets a frame be found by its name, but reading any other property throws, so a name it
// does not have falls back to the window).
function storageTarget(name) {
  var platform = window.opener || window.parent;
  if (name === "_parent") { return platform; }
  try { return platform.frames[name] || platform; } catch (e) { return platform; }
}
