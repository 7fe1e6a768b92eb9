"""The execution lifecycle, in one home.

- transitions: the only code that writes an execution's status (each change one conditional UPDATE
  or one INSERT, stamped with the database's clock);
- overlap: the pure decision of what an active run means for a new one (the overlap policies);
- runner: claim → execute → finish → retry for one execution;
- context and monitor: what a running executor reports through, and the thread that carries
  control flags and heartbeats;
- steps: how a workflow starts, skips and controls its steps;
- clock and identity: the database's clock, and process identities that survive pid reuse.
"""
