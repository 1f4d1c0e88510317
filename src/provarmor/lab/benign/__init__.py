"""The benign workloads, one module each; :mod:`provarmor.lab.registry` lists them."""
