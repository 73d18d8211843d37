"""The risk page: a user's own risk limits over the home's defaults, validated before they are stored.

Why per user: one home may hold a cautious and a bold trader; each run reads its owner's limits
(``security.access.user_risk_limits``). The form shows every limit with its default and its allowed
range; an out-of-range value is refused naming the field (``set_user_risk`` validates with the same
``RiskLimits`` model the runs use), and nothing is half-stored.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from workbench.config import RiskLimits, Settings
from workbench.dashboard.common import Notice
from workbench.dashboard.session import PageSession
from workbench.errors import WorkbenchError
from workbench.security.access import set_user_risk, user_risk_limits

__all__ = ["RiskPage", "allowed_range"]


def allowed_range(field: str) -> str:
    """The field's bounds in words, from the model's own constraints: "0 < x ≤ 1"."""
    lo = hi = ""
    for m in RiskLimits.model_fields[field].metadata:  # annotated_types Gt/Ge/Lt/Le, read by attribute
        if getattr(m, "gt", None) is not None:
            lo = f"{m.gt} < "
        elif getattr(m, "ge", None) is not None:
            lo = f"{m.ge} ≤ "
        elif getattr(m, "lt", None) is not None:
            hi = f" < {m.lt}"
        elif getattr(m, "le", None) is not None:
            hi = f" ≤ {m.le}"
    return f"{lo}x{hi}" if lo or hi else "yes / no"


class RiskPage:
    def __init__(self, settings: Settings, session: PageSession):
        self.settings = settings
        self.session = session
        self.notice = Notice("wb-risk-message")
        defaults = settings.risk
        self.inputs: dict[str, Any] = {}
        rows = []
        for name, field in RiskLimits.model_fields.items():
            default = getattr(defaults, name)
            box: Any = (
                w.Checkbox(value=bool(default), indent=False)
                if isinstance(default, bool)
                else w.FloatText(value=float(default), step=0.01)
            )
            box.add_class(f"wb-risk-{name.replace('_', '-')}")
            box.layout.width = "120px"
            self.inputs[name] = box
            rows.append(
                w.HBox(
                    [
                        w.HTML(f"<code>{name}</code>", layout=w.Layout(width="190px")),
                        box,
                        w.HTML(
                            f"<span class='wb-hint'>default {html.escape(str(default))} · "
                            f"{html.escape(allowed_range(name))} · {html.escape(field.description or '')}</span>"
                        ),
                    ]
                )
            )
        self.save_button = w.Button(description="Save limits", button_style="primary", icon="save")
        self.save_button.add_class("wb-risk-save")
        self.reset_button = w.Button(description="Back to defaults", icon="undo")
        self.reset_button.add_class("wb-risk-reset")
        self.save_button.on_click(self.save)
        self.reset_button.on_click(self.reset)
        self.widget = w.VBox(
            [
                w.HTML(
                    "<h3>Your risk limits</h3><div class='wb-hint'>Read by every run you start (a running run "
                    "keeps the limits it started with).</div>"
                ),
                *rows,
                w.HBox([self.save_button, self.reset_button]),
                self.notice.widget,
            ]
        )
        self.widget.add_class("wb-risk-page")

    def refresh(self) -> None:
        """Show the logged-in user's current limits."""
        user = self.session.user
        if user is None:
            return
        mine = user_risk_limits(self.session.accounts.engine, user, self.settings.risk)
        for name, box in self.inputs.items():
            box.value = getattr(mine, name)

    def save(self, _: object = None) -> None:
        changes = {name: box.value for name, box in self.inputs.items()}
        self._store(changes, "saved")

    def reset(self, _: object = None) -> None:
        self._store(self.settings.risk.model_dump(), "back to the defaults")

    def _store(self, changes: dict[str, Any], what: str) -> None:
        try:
            user = self.session.current()
            new = set_user_risk(self.session.accounts.engine, user, self.settings.risk, changes)
        except WorkbenchError as e:
            self.notice.say(str(e), "error")
            return
        self.session.accounts.record(user, "risk_set", True, ", ".join(f"{k}={getattr(new, k)}" for k in changes))
        self.refresh()
        self.notice.say(f"risk limits {what}", "ok")
