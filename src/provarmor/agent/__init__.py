"""The live agent: sensors -> pipeline -> spool -> transport to the manager."""
