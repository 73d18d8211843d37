"""The risk page: every limit with its default and allowed range, the user's own values stored after
validation (an out-of-range value is refused naming the field, nothing half-stored), back to defaults."""

from __future__ import annotations

from tests.kit.users import trader
from tests.unit.dashboard.pages import logged_in, open_tab
from workbench.config import RiskLimits
from workbench.security.access import user_risk_limits


def test_risk_form_shows_defaults_validates_and_stores_per_user(settings):
    other = trader(settings, "other")
    app = logged_in(settings)
    risk = open_tab(app, "Risk")
    assert set(risk.inputs) == set(RiskLimits.model_fields)
    assert risk.inputs["max_position_pct"].value == settings.risk.max_position_pct
    text = risk.widget.children[1].children[2].value  # the first row's hint
    assert f"default {settings.risk.max_position_pct}" in text and "0 &lt; x ≤ 1" in text
    engine = app.session.accounts.engine

    risk.inputs["max_position_pct"].value = 0.05
    risk.inputs["max_daily_loss_pct"].value = 1.5  # out of range: the whole save is refused
    risk.save_button.click()
    assert risk.notice.kind == "error" and "max_daily_loss_pct" in risk.notice.text and "1.5" in risk.notice.text
    assert user_risk_limits(engine, app.user, settings.risk) == settings.risk

    risk.inputs["max_daily_loss_pct"].value = 0.02
    risk.inputs["flatten_on_emergency"].value = True
    risk.save_button.click()
    mine = user_risk_limits(engine, app.user, settings.risk)
    assert risk.notice.kind == "ok" and mine.max_position_pct == 0.05 and mine.max_daily_loss_pct == 0.02
    assert mine.flatten_on_emergency is True
    assert user_risk_limits(engine, other.user, settings.risk) == settings.risk  # another user's are untouched
    again = open_tab(logged_in(settings), "Risk")  # a new page shows the stored values
    assert again.inputs["max_position_pct"].value == 0.05 and again.inputs["flatten_on_emergency"].value is True
    audit = [r for r in app.session.accounts.audit_log(20, user=app.user) if r["action"] == "risk_set"]
    assert audit and "max_position_pct=0.05" in audit[0]["detail"]

    risk.reset_button.click()
    assert user_risk_limits(engine, app.user, settings.risk) == settings.risk
    assert risk.inputs["max_position_pct"].value == settings.risk.max_position_pct
