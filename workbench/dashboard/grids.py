"""Data grids for the live tables: ipydatagrid (a canvas grid built for large tables: virtual scrolling,
column sort and filter in each header's menu) with number formats, BUY/SELL colours, pages for the
ever-growing histories, and a CSV export the browser downloads without leaving the machine.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping

import ipywidgets as w
import pandas as pd
from ipydatagrid import DataGrid, TextRenderer, VegaExpr

__all__ = ["make_grid", "set_grid", "PagedGrid", "ExportButton", "csv_link", "FORMATS", "SIDE_COLOURS"]

# d3-format strings: money to the cent, quantities and prices to what they carry, shares as percent.
FORMATS: dict[str, str] = {
    "price": ",.6~g",
    "average_price": ",.6~g",
    "last_price": ",.6~g",
    "limit_price": ",.6~g",
    "stop_price": ",.6~g",
    "target_price": ",.6~g",
    "stop_loss": ",.6~g",
    "take_profit": ",.6~g",
    "quantity": ",.8~g",
    "filled_quantity": ",.8~g",
    "strength": ".3f",
    "confidence": ".3f",
    "fee": ",.4~f",
    "market_value": ",.2f",
    "unrealized_pnl": ",.2f",
    "realized_pnl": ",.2f",
    "weight": ".2%",
}
SIDE_COLOURS = VegaExpr(
    "cell.value === 'BUY' || cell.value === 'buy' ? '#c8e6c9' : "
    "(cell.value === 'SELL' || cell.value === 'sell' ? '#ffcdd2' : 'white')"
)
PNL_COLOURS = VegaExpr("cell.value > 0 ? '#1b5e20' : (cell.value < 0 ? '#b71c1c' : 'black')")


def _renderers(columns: list[str]) -> dict[str, TextRenderer]:
    out: dict[str, TextRenderer] = {}
    for c in columns:
        if c in ("signal", "side"):
            out[c] = TextRenderer(background_color=SIDE_COLOURS, font="bold 12px sans-serif")
        elif c.endswith("pnl"):
            out[c] = TextRenderer(format=FORMATS[c], text_color=PNL_COLOURS, horizontal_alignment="right")
        elif c in FORMATS:
            out[c] = TextRenderer(format=FORMATS[c], horizontal_alignment="right")
    return out


def make_grid(frame: pd.DataFrame, height: str = "320px", widths: Mapping[str, int] | None = None) -> DataGrid:
    grid = DataGrid(
        frame,
        base_column_size=96,
        base_row_size=22,
        selection_mode="cell",
        renderers=_renderers(list(frame.columns)),
        column_widths=dict(widths or {}),
        layout=w.Layout(height=height, width="100%"),
    )
    return grid


def set_grid(grid: DataGrid, frame: pd.DataFrame, max_height: int | None = None) -> None:
    """Send new data (the whole frame: call only when it changed); the header menus' sorts stay.
    With ``max_height`` the grid shrinks to its rows (a 6-row table needs no 380 px of blank)."""
    if frame.index.name is None:
        frame = frame.reset_index(drop=True).rename_axis("#")
    grid.data = frame
    if max_height is not None:
        grid.layout.height = f"{min(max_height, 23 * (len(frame) + 1) + 24)}px"


def csv_link(frame: pd.DataFrame, name: str, label: str = "Export CSV") -> str:
    """A link that downloads ``frame`` as CSV from the page itself (a data URI: no server round trip)."""
    payload = base64.b64encode(frame.to_csv(index=False).encode()).decode()
    return (
        f"<a download='{html.escape(name)}' href='data:text/csv;base64,{payload}' "
        f"style='font-size:12px'>{html.escape(label)} ({len(frame):,} rows)</a>"
    )


class ExportButton:
    """'Export CSV' makes the download link on demand: encoding thousands of rows on every refresh
    would cost the kernel for a link rarely used."""

    def __init__(self, frame_getter: Callable[[], pd.DataFrame], name: str):
        self.frame_getter = frame_getter
        self.name = name
        self.button = w.Button(description="Export CSV", icon="download", layout=w.Layout(width="auto"))
        self.link = w.HTML()
        self.button.on_click(lambda _: self.prepare())
        self.widget = w.HBox([self.button, self.link], layout=w.Layout(align_items="center"))

    def prepare(self) -> None:
        self.link.value = csv_link(self.frame_getter(), self.name, f"download {self.name}")


class PagedGrid:
    """A history (orders, fills, the log) newest first, ``page_size`` rows a page: the grid holds one
    page, so a long run's tens of thousands of rows never travel to the browser at once."""

    def __init__(
        self,
        columns: list[str],
        page_size: int = 500,
        height: int = 300,
        name: str = "rows",
        widths: Mapping[str, int] | None = None,
    ):
        self.columns = columns
        self.max_height = height
        self.page_size = page_size
        self.name = name
        self.page = 0
        self.frame = pd.DataFrame(columns=columns)
        self.grid = make_grid(self.frame, f"{height}px", widths)
        self.prev = w.Button(description="◀ newer", layout=w.Layout(width="auto"))
        self.next = w.Button(description="older ▶", layout=w.Layout(width="auto"))
        self.caption = w.HTML()
        self.export = ExportButton(lambda: self.frame, f"{name}.csv")
        self.prev.on_click(lambda _: self.turn(-1))
        self.next.on_click(lambda _: self.turn(1))
        bar = w.HBox([self.prev, self.next, self.caption, self.export.widget], layout=w.Layout(flex_flow="row wrap"))
        self.widget = w.VBox([bar, self.grid], layout=w.Layout(width="100%"))
        self._shown: tuple[int, int, int] | None = None
        self._render()

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.frame) // self.page_size))

    def set_frame(self, frame: pd.DataFrame) -> None:
        """The whole history, newest first (the caller keeps it; only the page shown is sent)."""
        self.frame = frame
        self.page = min(self.page, self.pages - 1)
        self._render()

    def turn(self, step: int) -> None:
        self.page = min(max(self.page + step, 0), self.pages - 1)
        self._render(force=True)

    def _render(self, force: bool = False) -> None:
        lo = self.page * self.page_size
        part = self.frame.iloc[lo : lo + self.page_size]
        key = (self.page, len(self.frame), id(self.frame))
        if force or key != self._shown:
            set_grid(self.grid, part[[c for c in self.columns if c in part.columns]], self.max_height)
            self._shown = key
        n = len(self.frame)
        self.caption.value = (
            f"<span style='font-size:12px;padding:0 8px' class='wb-caption-{self.name}'>"
            f"{self.name} {min(lo + 1, n):,}–{min(lo + self.page_size, n):,} of {n:,} · page {self.page + 1}/{self.pages}</span>"
        )
        self.prev.disabled = self.page == 0
        self.next.disabled = self.page >= self.pages - 1
