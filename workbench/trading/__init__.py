"""The live side: the operational store, orders, risk, portfolio, market feeds and the live loop.

It composes the research side (models → signals) with a broker; nothing here is imported by the
research modules. The live process (``runner``) and the dashboard share state only through ``store``.
"""

__all__: list[str] = []
