"""Ground-truth simulators. One module per dataset; shared grid logic in :mod:`.base`."""
