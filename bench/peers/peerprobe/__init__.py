"""The peer projects' probe: a task body that records the instant it began (BodyStart), so the peers'
lateness is measured where the task's own code begins, as ours is."""
