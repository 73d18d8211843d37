"""Keep the page's login across a reload: the session token in the browser tab's ``sessionStorage``.

Why: a reload (or Voilà's new kernel after a closed page) starts a fresh kernel whose memory holds no
session, so the page used to show the login form again. The browser keeps only the session token of
the users store (``workbench.security.users``) — never a password or an API key — and hands it to the
new kernel on load; the kernel adopts it only if the store still honours it (expiry, revocation and a
disabled user are checked there, as on every action). Logout, an expired or revoked session, and a
token the store refuses all clear it from the tab.

Why ``sessionStorage``, not ``localStorage`` or a cookie: it survives a reload but not the tab, is
not sent with any request, and is not shared with other tabs — a forgotten tab is the widest exposure.

Why a hidden password box and a script in the page's head (:data:`PAGE_SCRIPT`, added to the dashboard's
Voilà template by ``serving``), not an anywidget: anywidget gives each widget model 2 s to load and
initialise, and a model that misses that window (a busy page, a loaded machine: seen in the browser
tests) never runs its code — the tab then neither stored the token nor offered it back. The box is a
core ipywidgets view, always rendered; the head script finds it whenever it appears.

The protocol is the box's synced ``value``: the script sets it from storage when the kernel's is empty
(and sends it as typing would); the kernel answers by keeping it (adopted) or setting it to ""
(refused: the script then forgets it); a login or logout in the kernel sets it, and the script stores
or removes what it sees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from workbench.errors import AccessError

__all__ = ["CLASS", "PAGE_SCRIPT", "STORAGE_PREFIX", "RememberedSession"]

STORAGE_PREFIX = "workbench.session:"
CLASS = "wb-remember"
_SCOPE = "wb-scope-"  # + one key per workbench home (not secret: a hash of its path)

# A classic script (not a module): it runs at once, before the kernel has built any widget, and polls
# for the box — cheap (one querySelectorAll per 250 ms) and independent of when the widgets render.
PAGE_SCRIPT = (
    """<script>
(function () {
  var PREFIX = "%PREFIX%", CLASS = "%CLASS%", SCOPE = "%SCOPE%";
  var seen = new WeakMap();  // box -> the value last seen in it
  function storage() { try { return window.sessionStorage; } catch (e) { return null; } }
  function scopeOf(box) {
    var root = box.closest("." + CLASS);
    if (!root) return null;
    for (var i = 0; i < root.classList.length; i++) {
      var c = root.classList[i];
      if (c.indexOf(SCOPE) === 0) return c.slice(SCOPE.length);
    }
    return null;
  }
  function send(box, value) {
    box.value = value;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }
  function tick() {
    var s = storage();
    if (!s) return;
    var boxes = document.querySelectorAll("." + CLASS + " input");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i], scope = scopeOf(box);
      if (!scope) continue;
      var key = PREFIX + scope;
      if (!seen.has(box)) {  // a new page's box: offer the kept session to the new kernel
        var saved = s.getItem(key);
        if (saved && !box.value) { seen.set(box, saved); send(box, saved); continue; }
        seen.set(box, box.value);
        if (box.value) s.setItem(key, box.value);
        continue;
      }
      if (box.value !== seen.get(box)) {  // the kernel changed it: login, logout, refusal
        seen.set(box, box.value);
        if (box.value) { s.setItem(key, box.value); } else { s.removeItem(key); }
      }
    }
  }
  window.setInterval(tick, 250);
})();
</script>
""".replace("%PREFIX%", STORAGE_PREFIX)
    .replace("%CLASS%", CLASS)
    .replace("%SCOPE%", _SCOPE)
)


class RememberedSession(w.Password):
    """The hidden box that carries the session token between the kernel and the tab's storage.

    ``adopt(token)`` is called when the browser offers a token the kernel does not hold; it returns
    whether the token was taken (a refused one is cleared here, and so in the browser)."""

    def __init__(self, home: str, adopt: Callable[[str], bool], **kwargs: Any):
        super().__init__(value="", continuous_update=True, **kwargs)
        self.scope = hashlib.sha256(home.encode()).hexdigest()[:16]
        self.add_class(CLASS)
        self.add_class(_SCOPE + self.scope)
        self._adopt = adopt
        self._held = ""  # the token the kernel's session holds (what ``token`` must end up as)
        self.observe(self._offered, names="value")
        self.layout.display = "none"

    @property
    def token(self) -> str:
        return str(self.value)

    @token.setter
    def token(self, value: str) -> None:
        self.value = value

    def hold(self, token: str | None) -> None:
        """The kernel's session changed (login, logout, expiry): what the tab must keep from now on."""
        self._held = token or ""
        self.token = self._held

    def _offered(self, change: dict[str, Any]) -> None:
        new = str(change["new"] or "")
        if new == self._held or not new:
            return
        if self._held:  # the kernel has its own session: the tab follows it, not the other way
            self.token = self._held
            return
        try:
            ok = self._adopt(new)
        except AccessError:
            ok = False
        if not ok:
            self.token = ""  # refused: the browser forgets it
