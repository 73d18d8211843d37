"""The verdict sentence never prints "nan": a figure that was not measured reads "n/a", with why."""

from __future__ import annotations

from workbench.models.verdict import verdict_text

_NAN = float("nan")


def _metrics(**over: float) -> dict:
    m = {
        "ic_mean": _NAN,
        "ic_t": _NAN,
        "ic_ir": _NAN,
        "momentum_ic_mean": _NAN,
        "reversal_ic_mean": _NAN,
        "auc": 0.512,
        "n_folds": 3,
        "folds_beating": 1,
        "beats_baselines": False,
    }
    return {**m, **over}


def test_a_sign_label_says_the_ic_is_not_measured_and_why():
    text = verdict_text("lgbm", "sign", _metrics())
    assert "nan" not in text.lower(), text
    assert "mean daily rank IC n/a (not measured: a sign label is judged per instrument, by its AUC" in text
    assert "fold-mean AUC 0.512" in text and "has NO edge" in text


def test_a_cross_sectional_label_without_an_ic_says_too_few_instruments():
    text = verdict_text("lgbm", "xs_median", _metrics(ic_t=0.0))
    assert "nan" not in text.lower(), text
    assert "rank IC n/a (too few instruments with a score on the test dates to rank)" in text


def test_measured_figures_are_printed_and_a_missing_auc_is_n_a():
    text = verdict_text(
        "lgbm", "xs_median", _metrics(ic_mean=0.0123, ic_t=3.4, ic_ir=0.21, momentum_ic_mean=-0.002, auc=_NAN)
    )
    assert "mean daily rank IC +0.0123 (t 3.4, ICIR +0.210) vs momentum -0.0020, reversal n/a" in text
    assert "fold-mean AUC n/a" in text and "IC t ≥ 3" in text
