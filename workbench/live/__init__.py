"""Live market data, venue-neutral: the quote cache, forming bars built from ticks, and the backfill merge.

    ticks (from any venue's stream or REST poll) ──► TickBuffer ──drain──► QuoteCache (latest quote per slot)
                                                                    └───► BarBuilder (forming bar per slot)
                                                                              │ closed bars
                                          venue OHLCV history ──► merge_backfill ──► lake

Instruments are *slots* (``SlotMap``): every hot-path structure is a numpy array indexed by slot, so a
batch of ticks is applied with one kernel call, never one Python object per instrument. The venues'
stream clients (``workbench/venues/<venue>/stream.py``) only produce ticks; this package owns state.
"""
