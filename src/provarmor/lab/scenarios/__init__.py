"""The APT scenarios, one module each; :mod:`provarmor.lab.registry` lists them."""
