"""Write operations of the gateways app: clients, sites, gateways, relays, tunnel addresses."""
