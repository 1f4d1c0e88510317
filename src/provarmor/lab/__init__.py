"""The attack lab: real multi-stage attacks and real benign work, run on this machine.

The lab builds a small victim environment (a vulnerable web application, lab users, network
namespaces standing in for a second host, a C2 server and exfiltration sinks), runs one APT
scenario or a mix of benign workloads in it while a :class:`~provarmor.lab.runner.Recorder`
records, and writes the ground truth (``labels.json``) out of band: the lab knows which
processes it started as the attacker, so labels never need to be read from the event data.

Everything it creates is removed afterwards, also after a crash (:func:`cleanup`), and no
traffic ever leaves loopback or the lab's own namespaces (:mod:`provarmor.lab.containment`).

Modules:

* ``scenario`` / ``techniques``: what a scenario is (steps, ATT&CK techniques) and the
  technique catalogue; ``registry``: the one list of scenarios and benign workloads;
* ``scenarios/`` and ``benign/``: one module per scenario or workload;
* ``environment``: the victim environment both run in; ``netns``, ``services``, ``webapp``,
  ``payloads``: its parts; ``jail`` and ``snapshot``: process and file-system clean-up;
* ``runner``: runs a scenario or a benign mix against a recorder and writes the ground truth
  (:mod:`provarmor.evaluation.groundtruth`).

Datasets, labels, scoring and the evaluation protocol live in :mod:`provarmor.evaluation`,
which the lab imports and which never imports the lab.

It runs real programs as root; only :func:`provarmor.lab.runner.run_lab` and
:func:`cleanup` change the machine.
"""

from __future__ import annotations

from provarmor.lab.cleanup import cleanup

__all__ = ["cleanup"]
