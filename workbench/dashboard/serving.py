"""How `workbench dashboard` serves the page with Voilà: on loopback, nothing fetched from the internet,
and no kernel left behind when a page closes.

Three problems of a plain ``voila dashboard.ipynb``, and what is done about each:

* **CDN requests.** Voilà's lab template links Font Awesome from cdn.jsdelivr.net, although the same
  Font Awesome (CSS and fonts) is bundled in Voilà's own JavaScript. A ``workbench`` template is
  written at launch: the lab template of the installed Voilà with the CDN links taken out (made from the
  installed file, so a Voilà upgrade is followed, and refused loudly if the links are no longer there to
  remove — then someone must look).
* **The page's shutdown call refused.** On ``beforeunload`` the page posts ``_xsrf`` read from the
  ``_xsrf`` cookie, which Voilà never sets, so the server refused the call and every page load leaked
  its ~270 MB kernel. A pre-launch hook reads ``handler.xsrf_token``, which sets the cookie.
* **Kernels of pages closed without that call** (a crashed tab, a dropped connection) are culled: a
  kernel with no connected page is shut down ``cull_idle_s`` after its last activity. The page's own
  widget traffic (``comm_msg``: the live view's refresh every few seconds) does not count as activity,
  or a closed page would keep its kernel alive forever; a page still connected is never culled.
* **plotly's widget bundle once, not once per figure.** The template's ``static/`` folder gets a copy of
  plotly's widget bundle, served at ``voila/static/<bundle_name()>``, and the kernels get
  ``WORKBENCH_PLOTLY_BUNDLE``: the live view's figures then load that one URL instead of each sending and
  importing its own 5 MB copy (``live_charts`` says why), and the page's head loads it early, before the
  widget models start their 2 s initialisation clock (``_preload_plotly``).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError

__all__ = ["TEMPLATE", "prepare", "voila_command", "set_xsrf_cookie", "CDN_MARK"]

TEMPLATE = "workbench"
CDN_MARK = "cdn.jsdelivr.net"
CULL_IDLE_S = 60
CULL_INTERVAL_S = 10
# jupyter_server's own untracked types plus the widgets' traffic.
_UNTRACKED = [
    "comm_info_request",
    "comm_info_reply",
    "kernel_info_request",
    "kernel_info_reply",
    "shutdown_request",
    "shutdown_reply",
    "interrupt_request",
    "interrupt_reply",
    "debug_request",
    "debug_reply",
    "stream",
    "display_data",
    "update_display_data",
    "execute_input",
    "execute_result",
    "error",
    "status",
    "clear_output",
    "debug_event",
    "input_request",
    "input_reply",
    "comm_msg",
    "comm_open",
    "comm_close",
]


def set_xsrf_cookie(req_handler: Any, notebook: Any = None, cwd: Any = None) -> None:
    """Voilà's pre-launch hook: touching ``xsrf_token`` makes tornado set the ``_xsrf`` cookie that the
    page's shutdown beacon sends back (without it the kernel shutdown is refused)."""
    _ = req_handler.xsrf_token


def _lab_template() -> Path:
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("voila", "templates"):
        path = Path(base) / "lab" / "index.html.j2"
        if path.is_file():
            return path
    raise ConfigError("Voilà's lab template was not found: reinstall voila (pip install 'voila>=0.5')")


def prepare(runtime: Path, cull_idle_s: int = CULL_IDLE_S, cull_interval_s: int = CULL_INTERVAL_S) -> Path:
    """Write the ``workbench`` template and ``voila.py`` under ``runtime``; returns the config folder."""
    source = _lab_template().read_text()
    lines = source.splitlines(keepends=True)
    kept = [ln for ln in lines if CDN_MARK not in ln]
    if len(kept) == len(lines):
        raise ConfigError(
            f"Voilà's lab template ({_lab_template()}) no longer links {CDN_MARK}: check what it loads from "
            "the internet now and update workbench/dashboard/serving.py"
        )
    where = runtime / "voila" / "templates" / TEMPLATE
    where.mkdir(parents=True, exist_ok=True)
    (where / "index.html.j2").write_text(_preload_plotly("".join(kept)))
    (where / "conf.json").write_text(json.dumps({"base_template": "lab"}))
    _copy_plotly_bundle(where / "static")
    config = runtime / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "voila.py").write_text(
        "# Written by `workbench dashboard` at each launch (workbench/dashboard/serving.py): edits are lost.\n"
        "from workbench.dashboard.serving import set_xsrf_cookie\n\n"
        "c = get_config()  # noqa: F821\n"
        'c.Voila.ip = "127.0.0.1"\n'
        f"c.VoilaConfiguration.template = {TEMPLATE!r}\n"
        "c.VoilaConfiguration.prelaunch_hook = set_xsrf_cookie\n"
        f"c.MappingKernelManager.cull_idle_timeout = {int(cull_idle_s)}\n"
        f"c.MappingKernelManager.cull_interval = {int(cull_interval_s)}\n"
        "c.MappingKernelManager.cull_connected = False\n"
        f"c.MappingKernelManager.untracked_message_types = {_UNTRACKED!r}\n"
    )
    return config


HEAD_MARK = "{%- endblock html_head_js_logs -%}"


def _preload_plotly(template: str) -> str:
    """The page's head loads plotly's widget bundle as a module, so it is fetched and run while the
    kernel still executes the notebook: anywidget gives each widget model 2 s to load its module and
    initialise (``AbortSignal.timeout(2000)`` in anywidget's runtime), and a model that misses it takes
    no update for the rest of the page's life. A 5 MB module parsed while a loaded machine also builds
    the page's other widgets missed it: the charts drew once, empty, and never changed."""
    from workbench.dashboard.live_charts import bundle_name

    if HEAD_MARK not in template:
        raise ConfigError(
            f"Voilà's lab template ({_lab_template()}) has no {HEAD_MARK!r} any more: plotly's widget bundle "
            "cannot be preloaded; update workbench/dashboard/serving.py"
        )
    from workbench.dashboard.remember import PAGE_SCRIPT

    tag = f'<script type="module" src="{{{{ resources.base_url }}}}voila/static/{bundle_name()}"></script>\n'
    # the login kept across a reload (remember.py says why it is a head script, not a widget's module)
    tag += "{% raw %}" + PAGE_SCRIPT + "{% endraw %}\n"
    return template.replace(HEAD_MARK, HEAD_MARK + "\n" + tag, 1)


def _copy_plotly_bundle(static: Path) -> Path:
    """plotly's widget bundle under the template's static folder (copied when missing or changed)."""
    import plotly.basewidget

    from workbench.dashboard.live_charts import bundle_name

    source = Path(plotly.basewidget.__file__).parent / "package_data" / "widgetbundle.js"  # its ``_esm``
    if not source.is_file():
        raise ConfigError(f"plotly's widget bundle is not at {source}: reinstall plotly (pip install 'plotly>=6')")
    static.mkdir(parents=True, exist_ok=True)
    target = static / bundle_name()
    if not target.is_file() or target.stat().st_size != source.stat().st_size:
        shutil.copyfile(source, target)
    return target


def voila_command(notebook: Path, port: int, runtime: Path, **cull: int) -> tuple[list[str], dict[str, str]]:
    """The Voilà command line and the environment additions (``JUPYTER_PATH`` finds the template)."""
    config = prepare(runtime, **cull)
    cmd = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        f"--port={port}",
        "--no-browser",
        f"--Voila.config_file_paths={config}",
    ]
    from workbench.dashboard.live_charts import BUNDLE_ENV, bundle_name

    return cmd, {"JUPYTER_PATH": str(runtime), BUNDLE_ENV: bundle_name()}
