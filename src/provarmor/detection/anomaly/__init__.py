"""The learned process-behaviour anomaly model (conditional rarity, NodLink-inspired).

Each process is described by its executable, its argument tokens and the files, endpoints and
child programs it touches (:mod:`.tokens`, :mod:`.profile`). Training (:mod:`.train`) counts,
per executable and per executable-in-its-parent's-context, which tokens benign processes
showed, and how often each executable shows something new; the bundle (:mod:`.bundle`) holds
those counts. Scoring (:mod:`.scorer`, :mod:`.detector`) sums the surprise of a process's most
unexpected tokens, incrementally, with dictionary lookups only.
"""
