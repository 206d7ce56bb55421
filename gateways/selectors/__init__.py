"""Read operations of the gateways app: clients, sites, gateways, relays (scoped per subject)."""
