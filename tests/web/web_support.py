"""What the browser tests share. They drive a real ``gateway serve`` on the quickstart's demo
district with Playwright, through Debian's chromium (by executable path: no browser is ever
downloaded).

Each page a test visits is checked as a person meets it (:func:`check_page`): axe-core (npm;
`.ci/run` installs it into ``build/axe``, or set ``GATEWAY_AXE_JS``) finds no violation of WCAG
2.1 A/AA; besides, text contrast of the computed styles against WCAG 2.1 AA, a visible label for
every control, one ``h1``, a language, and (on a phone) no sideways scrolling. A screenshot of
each page goes to ``build/screenshots/`` (or ``GATEWAY_SCREENSHOT_DIR``).
"""
from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"
SCREENSHOTS = Path(os.environ.get("GATEWAY_SCREENSHOT_DIR")
                   or Path(__file__).resolve().parents[2] / "build" / "screenshots")
AXE_JS = Path(os.environ.get("GATEWAY_AXE_JS")
              or Path(__file__).resolve().parents[2] / "build" / "axe" / "node_modules" / "axe-core"
              / "axe.min.js")
AXE_RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
CHROMEBOOK = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

# Every text node's colour against the first opaque background behind it, as WCAG 2.1 1.4.3
# computes contrast; large text (24px, or 18.66px bold) needs 3:1, the rest 4.5:1.
CONTRAST = """() => {
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92
    : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const behind = el => { for (; el; el = el.parentElement) {
    const c = parse(getComputedStyle(el).backgroundColor); if (c && c.a > 0) return c; }
    return {r: 255, g: 255, b: 255, a: 1}; };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || !el) continue;
    const style = getComputedStyle(el), box = el.getBoundingClientRect();
    if (style.visibility === "hidden" || box.width === 0 || box.right < 0) continue;
    const fg = parse(style.color), bg = behind(el), a = lum(fg), b = lum(bg);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    if (ratio < (size >= 24 || (bold && size >= 18.66) ? 3 : 4.5))
      bad.push(el.tagName + " '" + node.textContent.trim().slice(0, 40) + "' " + ratio.toFixed(2));
  }
  return bad;
}"""

UNLABELLED = """() => [...document.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button")].filter(e =>
  e.tagName === "BUTTON" ? !(e.textContent.trim() || e.getAttribute("aria-label"))
  : !((e.labels && e.labels.length) || e.getAttribute("aria-label"))).map(e => e.outerHTML)"""


def launch_chromium(playwright):
    """Debian's chromium under Playwright (the test skipped without it, except on CI, where it
    must run)."""
    import pytest

    if not Path(CHROMIUM).exists():
        # Like Redis: skipped where it is missing, except on CI, where it must run.
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no {CHROMIUM}, and CI=true needs it: apt-get install -y chromium")
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium to run the browser tests")
    return playwright.chromium.launch(executable_path=CHROMIUM,
                                      args=["--no-sandbox", "--disable-dev-shm-usage"])


def axe_source() -> str:
    """axe-core's script (skipped without it, except on CI, where it must run)."""
    import pytest

    if not AXE_JS.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no {AXE_JS}, and CI=true needs it: npm install --prefix build/axe axe-core@4")
        pytest.skip(f"no {AXE_JS}: `npm install --prefix build/axe axe-core@4` to run the checks")
    return AXE_JS.read_text()


def axe_violations(page) -> list[str]:
    """axe-core's WCAG 2.1 A and AA violations on the page as it stands, one line each."""
    # Evaluated through the browser's debugging protocol, which the page's CSP does not govern
    # (an added <script> would be refused by it, as it should be).
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    found = page.evaluate("""tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})
        .then(r => r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' -- '
                                    + v.nodes.map(n => n.target.join(' ') + ' ' + n.html).join(', ')))""",
                          AXE_RULES)
    return found


def check_page(page, name: str) -> None:
    """What every page owes a person: no axe-core WCAG 2.1 A/AA violation, AA contrast, labelled
    controls, a heading, a language, no sideways scrolling; and its screenshot."""
    page.wait_for_load_state()
    violations = axe_violations(page)
    assert violations == [], f"{name}: {violations}"
    # The stylesheet came from the gateway itself and the page's CSP let it apply.
    assert page.evaluate("getComputedStyle(document.querySelector('header.bar'))"
                         ".backgroundColor") == "rgb(243, 245, 248)", name
    assert page.evaluate(CONTRAST) == [], name
    assert page.evaluate(UNLABELLED) == [], name
    assert page.locator("h1").count() == 1, name
    assert page.evaluate("document.documentElement.lang") == "en", name
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{name}: {width}px wide"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in_to_console(page, base: str) -> None:
    """The console's sign-in as a keyboard user does it."""
    page.goto(f"{base}/admin/")
    assert page.url == f"{base}/admin/login"
    check_page(page, "admin-login")
    # The first stop of the Tab key is the way past the header, and it shows when focused.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.locator(".skip").bounding_box()["x"] >= 0
    page.get_by_label("Email address").fill("it@district-1.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/admin/")
