"""Keep the page's login across a reload: the session token in the browser tab's ``sessionStorage``.

Why: a reload (or Voilà's new kernel after a closed page) starts a fresh kernel whose memory holds no
session, so the page used to show the login form again. The browser keeps only the session token of
the users store (``workbench.security.users``) — never a password or an API key — and hands it to the
new kernel on load; the kernel adopts it only if the store still honours it (expiry, revocation and a
disabled user are checked there, as on every action). Logout, an expired or revoked session, and a
token the store refuses all clear it from the tab.

Why ``sessionStorage``, not ``localStorage`` or a cookie: it survives a reload but not the tab, is
not sent with any request, and is not shared with other tabs — a forgotten tab is the widest exposure.

The protocol is one synced trait, ``token``: the browser sets it from storage when the kernel has
none; the kernel answers by keeping it (adopted) or setting it to "" (refused: the browser then forgets
it); a login or logout in the kernel sets it, and the browser stores or removes what it is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from workbench.errors import AccessError

__all__ = ["RememberedSession", "STORAGE_PREFIX"]

STORAGE_PREFIX = "workbench.session:"

_ESM = """
function storage() {
  try { return window.sessionStorage; } catch (e) { return null; }  // storage disabled: no memory
}
function key(model) { return "%PREFIX%" + model.get("scope"); }
function keep(model) {
  const s = storage(); if (!s) return;
  const t = model.get("token");
  if (t) { s.setItem(key(model), t); } else { s.removeItem(key(model)); }
}
function initialize({ model }) {
  const s = storage();
  const saved = s ? s.getItem(key(model)) : null;
  if (saved && !model.get("token")) {  // a reload: offer the kept session to the new kernel
    model.set("token", saved);
    model.save_changes();
  } else {
    keep(model);
  }
  model.on("change:token", () => keep(model));
}
function render({ el }) { el.style.display = "none"; }
export default { initialize, render };
""".replace("%PREFIX%", STORAGE_PREFIX)


class RememberedSession(anywidget.AnyWidget):
    """The invisible widget that carries ``token`` between the kernel and the tab's storage.

    ``adopt(token)`` is called when the browser offers a token the kernel does not hold; it returns
    whether the token was taken (a refused one is cleared here, and so in the browser)."""

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    token = traitlets.Unicode("").tag(sync=True)
    scope = traitlets.Unicode("").tag(sync=True)  # one key per workbench home (not secret: a hash of its path)

    def __init__(self, home: str, adopt: Callable[[str], bool], **kwargs: Any):
        super().__init__(scope=hashlib.sha256(home.encode()).hexdigest()[:16], **kwargs)
        self._adopt = adopt
        self._held = ""  # the token the kernel's session holds (what ``token`` must end up as)
        self.observe(self._offered, names="token")
        self.layout.display = "none"

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
