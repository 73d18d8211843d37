"""The dashboard launcher's Voilà set-up: no CDN link in the template served, the xsrf cookie set for
the page's shutdown beacon, kernels of closed pages culled, loopback only."""

from __future__ import annotations

import re
import runpy

import pytest

from workbench.dashboard import serving
from workbench.dashboard.live_charts import BUNDLE_ENV, bundle_name


def test_template_without_cdn_links_and_config(tmp_path):
    lab = serving._lab_template().read_text()
    assert serving.CDN_MARK in lab  # what Voilà ships: Font Awesome from jsdelivr
    cmd, env = serving.voila_command(tmp_path / "dashboard.ipynb", 8899, tmp_path)
    made = (tmp_path / "voila" / "templates" / serving.TEMPLATE / "index.html.j2").read_text()
    assert serving.CDN_MARK not in made and not re.search(r"""(href|src)=["']https?://""", made)
    # Only the CDN lines go; what comes: the preload of plotly's widget bundle (served from the template)
    # and the script that keeps the login across a reload.
    from workbench.dashboard.remember import PAGE_SCRIPT

    added = 2 + len(("{% raw %}" + PAGE_SCRIPT + "{% endraw %}").splitlines())
    assert len(made.splitlines()) == len(lab.splitlines()) - lab.count(serving.CDN_MARK) + added
    assert made.index("sessionStorage") < made.index("{%- endblock html_head_js -%}")
    bundle = bundle_name()
    assert f'<script type="module" src="{{{{ resources.base_url }}}}voila/static/{bundle}"></script>' in made
    assert made.index(bundle) < made.index("{%- endblock html_head_js -%}")  # in the head, before the cells
    served = tmp_path / "voila" / "templates" / serving.TEMPLATE / "static" / bundle
    assert served.stat().st_size > 1_000_000 and served.read_text().rstrip().endswith("*/")
    assert env == {"JUPYTER_PATH": str(tmp_path), BUNDLE_ENV: bundle} and "--port=8899" in cmd
    config = next(a for a in cmd if a.startswith("--Voila.config_file_paths=")).split("=", 1)[1]

    class C(dict):
        def __getattr__(self, name):
            return self.setdefault(name, C())

        def __setattr__(self, name, value):
            self[name] = value

    c = C()
    runpy.run_path(f"{config}/voila.py", init_globals={"get_config": lambda: c})
    assert c["Voila"]["ip"] == "127.0.0.1" and c["VoilaConfiguration"]["template"] == serving.TEMPLATE
    assert c["VoilaConfiguration"]["prelaunch_hook"] is serving.set_xsrf_cookie
    mkm = c["MappingKernelManager"]
    assert mkm["cull_idle_timeout"] > 0 and mkm["cull_connected"] is False
    assert "comm_msg" in mkm["untracked_message_types"]  # the refresh traffic does not keep a closed page alive


def test_the_hook_sets_the_cookie():
    class Handler:
        touched = False

        @property
        def xsrf_token(self):
            Handler.touched = True
            return b"token"

    serving.set_xsrf_cookie(Handler(), notebook=None, cwd=None)
    assert Handler.touched


def test_a_voila_whose_template_changed_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "lab.html.j2"
    fake.write_text("<html>no cdn here</html>")
    monkeypatch.setattr(serving, "_lab_template", lambda: fake)
    with pytest.raises(serving.ConfigError, match="no longer links"):
        serving.prepare(tmp_path / "rt")
