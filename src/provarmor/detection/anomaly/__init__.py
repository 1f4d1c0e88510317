"""The learned process-behaviour anomaly model (NodLink-style).

Each process is described by its executable, its argument tokens and the files, endpoints and
child programs it touches (:mod:`.tokens`, :mod:`.profile`). Training (:mod:`.train`, needs
gensim) embeds those tokens with FastText, weights them by rarity and fits a small numpy
autoencoder on benign processes; the bundle (:mod:`.bundle`) holds everything scoring needs.
Scoring (:mod:`.scorer`, :mod:`.detector`) needs numpy only.
"""
