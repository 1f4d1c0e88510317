"""Atomic Red Team tests run on this machine, safely, one at a time under the agent.

``provarmor lab atomics`` reads the Linux tests of an Atomic Red Team checkout, runs those
that can run here and writes per test what happened (ran, failed, or skipped and why) with
its time window and root process as labels.

Modules, bottom to top:

* ``model``: the tests as data and their pure YAML parser;
* ``arguments``: input-argument substitution into a per-test workspace;
* ``shellwords``, ``wrappers``, ``targets``, ``areas``, ``network``: reading shell text, the
  commands behind ``sudo`` and ``sh -c``, which files and hosts it touches;
* ``hazards``, ``identities``, ``safety``: the safety screen;
* ``downloads``, ``packages``: payloads served locally, allow-listed package installs;
* ``selection``: which tests can run and why the others cannot;
* ``sandbox``, ``execution``: the loopback-only, private-/tmp sandbox and one test's run;
* ``results``, ``groundtruth``, ``runner``: what a run writes, and :func:`run_atomics`.
"""

from __future__ import annotations

from provarmor.lab.atomics.runner import run_atomics

__all__ = ["run_atomics"]
