"""Outputs: an Output takes findings (alerts, later incidents) and writes them somewhere.
Formats are pure functions from a finding to a JSON-ready dict."""
