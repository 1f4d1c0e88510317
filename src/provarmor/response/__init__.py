"""Response: actions the agent takes on its own host (kill, suspend, quarantine, block,
isolate, lock a user), the policy that picks them for an incident, and the audit trail."""
