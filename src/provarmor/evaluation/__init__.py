"""Evaluation: what a recorded run is worth, apart from how it was recorded.

A lab run (or a real-world corpus chunk) leaves a dataset directory: the canonical events,
the ground truth written out of band, and the labels derived from both. This package reads
and writes those, scores the analysis against them and runs the evaluation protocol
(train on benign runs, calibrate on validation runs, score on test runs, mean ± std over
seeds). It never imports :mod:`provarmor.lab`, so ``provarmor eval``, ``train`` and
``calibrate`` run without the attack machinery (network namespaces, jails, scenarios).

Modules:

* ``groundtruth``: the ground truth a run writes (``labels.json``);
* ``labels``: recorded events plus ground truth -> entity labels;
* ``dataset``: a dataset directory (its files, metadata, loading, finishing a recording);
* ``scoring``: scores of the analysis on one dataset and in total;
* ``protocol``: the train / calibrate / test protocol over seeds;
* ``corpus`` and ``corpus_eval``: the real-world benign corpus and its evaluation.
"""
